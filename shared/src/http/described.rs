//! Routes from their descriptions: `routes!` serves each handler at the
//! path and methods its `#[utoipa::path]` names. Only tests make the
//! descriptions into a document (`docs/openapi.json`, which
//! `GET /openapi.json` answers as it is): a process builds none at its
//! start, and a function links none of that code.

use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use std::sync::Arc;

use crate::Platform;

type State = Arc<Platform>;

/// Routes, with (in tests) their descriptions.
pub(crate) struct Routes {
    pub(crate) router: Router<State>,
    #[cfg(test)]
    pub(crate) described: utoipa_axum::router::OpenApiRouter<State>,
}

/// What one `routes!` makes: handlers of one path.
pub(crate) struct Group {
    pub(crate) router: Router<State>,
    #[cfg(test)]
    pub(crate) described: utoipa_axum::router::UtoipaMethodRouter<State>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            #[cfg(test)]
            described: utoipa_axum::router::OpenApiRouter::new(),
        }
    }

    /// Routes described nowhere (a test's own).
    #[cfg(test)]
    pub(crate) fn from_router(router: Router<State>) -> Self {
        Self {
            router,
            #[cfg(test)]
            described: utoipa_axum::router::OpenApiRouter::new(),
        }
    }

    pub(crate) fn routes(self, group: Group) -> Self {
        Self {
            router: self.router.merge(group.router),
            #[cfg(test)]
            described: self.described.routes(group.described),
        }
    }

    pub(crate) fn merge(self, other: Routes) -> Self {
        Self {
            router: self.router.merge(other.router),
            #[cfg(test)]
            described: self.described.merge(other.described),
        }
    }

    /// The routes so far, through `layers` (`Router::layer`).
    pub(crate) fn layered(self, layers: impl FnOnce(Router<State>) -> Router<State>) -> Self {
        Self {
            router: layers(self.router),
            #[cfg(test)]
            described: self.described,
        }
    }
}

/// `router` with `handler` at the path and methods `P` (its
/// `#[utoipa::path]`) names.
pub(crate) fn add<P: utoipa::Path, H, T>(router: Router<State>, handler: H) -> Router<State>
where
    H: Handler<T, State>,
    T: 'static,
{
    use utoipa_axum::PathItemExt;
    let methods = P::methods()
        .iter()
        .fold(MethodRouter::new(), |methods, method| {
            methods.on(method.to_method_filter(), handler.clone())
        });
    router.route(&P::path(), methods)
}

/// `routes!(a, b)`, or `routes!(module::{a, b})`: the handlers, each at
/// the path and methods of its `#[utoipa::path]`.
macro_rules! routes {
    ($module:ident :: { $($handler:ident),+ $(,)? }) => {{
        let router = axum::Router::new();
        $(
            let router = $crate::http::described::add::<
                utoipa_axum::paste! { $module::[<__path_ $handler>] }, _, _
            >(router, $module::$handler);
        )+
        $crate::http::described::Group {
            router,
            #[cfg(test)]
            described: utoipa_axum::routes!($($module::$handler),+),
        }
    }};
    ($($handler:ident),+ $(,)?) => {{
        let router = axum::Router::new();
        $(
            let router = $crate::http::described::add::<
                utoipa_axum::paste! { [<__path_ $handler>] }, _, _
            >(router, $handler);
        )+
        $crate::http::described::Group {
            router,
            #[cfg(test)]
            described: utoipa_axum::routes!($($handler),+),
        }
    }};
}
pub(crate) use routes;
