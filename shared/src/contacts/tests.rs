use super::*;
use crate::transforms::ContactFields;

fn changes(email: Option<&str>, phone: Option<&str>, name: Option<&str>) -> Changes {
    Changes::parse(ContactFields {
        email: email.map(String::from),
        phone_number: phone.map(String::from),
        name: name.map(String::from),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn upsert_creates_then_updates_by_identifier() {
    let (p, _dir) = crate::testkit::platform().await;
    let (a, created) = upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(Some("John@Example.com"), None, Some("John")),
        true,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(created);
    assert_eq!(a.email.as_deref(), Some("john@example.com"));
    let (b, created) = upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(
            Some("john@example.com"),
            Some("+1 215 555 6677"),
            Some("John Doe"),
        ),
        true,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(!created);
    assert_eq!(b.id, a.id);
    assert_eq!(b.name.as_deref(), Some("John Doe"));
    // Now findable by phone too; other accounts see nothing.
    let (c, _) = find(&p, "acct_x", Identifier::PhoneNumber, "12155556677")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.id, a.id);
    assert!(
        find(&p, "acct_y", Identifier::Email, "john@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // No identifier: refused with a reason.
    let err = upsert(
        &p,
        "acct_x",
        Identifier::PhoneNumber,
        &changes(Some("x@example.com"), None, None),
        true,
        chrono::Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no phone_number"), "{err}");
}

#[tokio::test]
async fn concurrent_upserts_make_one_contact() {
    let (p, _dir) = crate::testkit::platform().await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut c = changes(Some("race@example.com"), None, None);
                c.fields.insert(format!("f{i}"), serde_json::json!(i));
                upsert(
                    &p,
                    "acct_x",
                    Identifier::Email,
                    &c,
                    true,
                    chrono::Utc::now(),
                )
                .await
                .unwrap()
                .0
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().id);
    }
    assert_eq!(ids.len(), 1, "one contact for one email");
    let (c, _) = find(&p, "acct_x", Identifier::Email, "race@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.fields.len(), 12, "no update lost: {:?}", c.fields);
}

#[test]
fn names_come_from_first_and_last_when_absent() {
    let c = Changes::parse(ContactFields {
        first_name: Some("John".into()),
        last_name: Some(" Smith ".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.name.as_deref(), Some("John Smith"));
    let c = Changes::parse(ContactFields {
        email: Some("".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.email, None, "an empty email is no email");
    assert!(
        Changes::parse(ContactFields {
            email: Some("nope".into()),
            ..Default::default()
        })
        .is_err()
    );
}

#[tokio::test]
async fn an_existing_contact_changes_only_when_asked() {
    let (p, _dir) = crate::testkit::platform().await;
    upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(Some("a@example.com"), None, Some("First")),
        false,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let (c, created) = upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(Some("a@example.com"), None, Some("Second")),
        false,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(!created);
    assert_eq!(c.name.as_deref(), Some("First"));
    let (c, _) = upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(Some("a@example.com"), None, Some("Second")),
        true,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(c.name.as_deref(), Some("Second"));
}

#[tokio::test]
async fn an_older_request_does_not_overwrite_a_newer_one() {
    let (p, _dir) = crate::testkit::platform().await;
    let t0 = chrono::Utc::now();
    let later = t0 + chrono::TimeDelta::seconds(5);
    upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(Some("o@example.com"), None, Some("Newer")),
        true,
        later,
    )
    .await
    .unwrap();
    // The older request arrives (or is delivered again) after the newer one.
    let (c, _) = upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(Some("o@example.com"), None, Some("Older")),
        true,
        t0,
    )
    .await
    .unwrap();
    assert_eq!(c.name.as_deref(), Some("Newer"));
    // It still fills what the newer one left empty.
    let mut older = changes(
        Some("o@example.com"),
        Some("+1 215 555 6677"),
        Some("Older"),
    );
    older
        .fields
        .insert("source".into(), serde_json::json!("crm"));
    let (c, _) = upsert(&p, "acct_x", Identifier::Email, &older, true, t0)
        .await
        .unwrap();
    assert_eq!(
        (c.name.as_deref(), c.phone_number.as_deref()),
        (Some("Newer"), Some("12155556677"))
    );
    assert_eq!(c.fields["source"], "crm");
    let (c, _) = upsert(
        &p,
        "acct_x",
        Identifier::Email,
        &changes(Some("o@example.com"), None, Some("Newest")),
        true,
        later,
    )
    .await
    .unwrap();
    assert_eq!(c.name.as_deref(), Some("Newest"), "the same time applies");
}
