//! Keys kept in Secrets Manager (the stack's `AdminKey` and `OperatorKey`),
//! read once by a function (the admin function's first request): its environment holds the
//! secret's ARN, never the key, so the key is in no configuration anyone
//! with read access to the function can see.

use aws_sdk_secretsmanager::Client;

/// The text of secret `id` (an ARN or a name).
pub async fn read(client: &Client, id: &str) -> Result<String, String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read the secret {id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )
        })?;
    out.secret_string()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("the secret {id} holds no text"))
}

/// The key named by `{name}_SECRET` (a secret's ARN, as `template.yaml`
/// sets it), read from Secrets Manager; else `{name}` itself (a function
/// run by hand, say with `cargo lambda watch`); else none.
pub async fn key_from_env(name: &str) -> Result<Option<String>, String> {
    if let Some(id) = set(&format!("{name}_SECRET")) {
        let config = super::sdk_config().await;
        return read(&Client::new(&config), &id).await.map(Some);
    }
    Ok(set(name))
}

/// Whether [`key_from_env`] has a key to read.
pub fn key_in_env(name: &str) -> bool {
    set(&format!("{name}_SECRET")).is_some() || set(name).is_some()
}

fn set(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|v| !v.trim().is_empty())
}
