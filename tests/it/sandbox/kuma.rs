//! The simulated Uptime Kuma 2.5.3 over Socket.IO behaves as
//! `contracts/uptime-kuma/NOTES.md` says.

use serde_json::{Value, json};

use super::support::{Kuma, Sandbox, monitor_payload};

#[tokio::test]
async fn login_pushes_the_version_and_tokens_log_in_again() {
    let sb = Sandbox::start().await;
    let mut kuma = Kuma::connect(&sb.handle.kuma_url).await;
    // The info sent on connect hides the version.
    let info = kuma.event("info").await;
    assert!(info[0].get("version").is_none(), "{info:?}");
    assert_eq!(kuma.ack("needSetup", vec![]).await, json!(false));
    let setup = kuma.ack("setup", vec![json!("x"), json!("y")]).await;
    assert_eq!(setup["ok"], false);
    let not_yet = kuma.ack("getMonitorList", vec![]).await;
    assert_eq!(
        not_yet,
        json!({"ok": false, "msg": "You are not logged in."})
    );
    let wrong = kuma.login("admin", "wrong").await;
    assert_eq!(
        wrong,
        json!({"ok": false, "msg": "authIncorrectCreds", "msgi18n": true})
    );
    let creds = &sb.handle.credentials;
    let ok = kuma
        .login(&creds.kuma_username, creds.kuma_password.expose())
        .await;
    assert_eq!(ok["ok"], true);
    let token = ok["token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    assert_eq!(kuma.event("monitorList").await, vec![json!({})]);
    let info = kuma.event("info").await;
    assert_eq!(info[0]["version"], "2.5.3");

    let mut other = Kuma::connect(&sb.handle.kuma_url).await;
    assert_eq!(
        other.ack("loginByToken", vec![json!("a.b.c")]).await,
        json!({"ok": false, "msg": "authInvalidToken", "msgi18n": true})
    );
    assert_eq!(
        other.ack("loginByToken", vec![json!(token)]).await,
        json!({"ok": true})
    );
    other.event("monitorList").await;
    // logout acknowledges with no argument.
    assert_eq!(other.call("logout", vec![]).await, Vec::<Value>::new());
    assert_eq!(other.ack("getTags", vec![]).await["ok"], false);
}

#[tokio::test]
async fn add_checks_the_2x_payload_like_the_real_server() {
    let sb = Sandbox::start().await;
    let mut kuma = Kuma::logged_in(&sb).await;
    let mut no_conditions = monitor_payload("fabrik:web", "https://app.example.com/health");
    no_conditions.as_object_mut().unwrap().remove("conditions");
    assert_eq!(
        kuma.ack("add", vec![no_conditions]).await,
        json!({"ok": false, "msg": "SQLITE_CONSTRAINT: NOT NULL constraint failed: monitor.conditions"})
    );
    let mut no_codes = monitor_payload("fabrik:web", "https://app.example.com/health");
    no_codes
        .as_object_mut()
        .unwrap()
        .remove("accepted_statuscodes");
    assert_eq!(
        kuma.ack("add", vec![no_codes]).await["msg"],
        "Cannot read properties of undefined (reading 'every')"
    );
    let mut numbers = monitor_payload("fabrik:web", "https://app.example.com/health");
    numbers["accepted_statuscodes"] = json!([200]);
    assert_eq!(
        kuma.ack("add", vec![numbers]).await["msg"],
        "Accepted status codes are not all strings"
    );
    let mut unknown = monitor_payload("fabrik:web", "https://app.example.com/health");
    unknown["labels"] = json!({});
    assert_eq!(
        kuma.ack("add", vec![unknown]).await["msg"],
        "SQLITE_ERROR: table monitor has no column named labels"
    );
    assert!(
        kuma.events
            .iter()
            .all(|(n, _)| n != "updateMonitorIntoList"),
        "nothing was added"
    );
}

#[tokio::test]
async fn monitors_are_added_edited_paused_listed_and_deleted() {
    let sb = Sandbox::start().await;
    let mut kuma = Kuma::logged_in(&sb).await;
    let mut payload = monitor_payload("fabrik:web", "https://app.example.com/health");
    payload["notificationIDList"] = json!({"1": true});
    let added = kuma.ack("add", vec![payload]).await;
    assert_eq!(added["ok"], true, "{added}");
    assert_eq!(added["msg"], "successAdded");
    assert_eq!(added["msgi18n"], true);
    let id = added["monitorID"].as_i64().unwrap();
    let pushed = kuma.event("updateMonitorIntoList").await;
    assert_eq!(pushed[0][id.to_string()]["name"], "fabrik:web");

    let got = kuma.ack("getMonitor", vec![json!(id)]).await;
    assert_eq!(got["ok"], true);
    let monitor = got["monitor"].clone();
    assert_eq!(monitor["accepted_statuscodes"], json!(["200-299"]));
    assert_eq!(monitor["notificationIDList"], json!({"1": true}));
    assert_eq!(monitor["conditions"], json!([]));
    assert_eq!(
        monitor.as_object().unwrap().len(),
        119,
        "as many keys as the real 2.5.3"
    );
    assert_eq!(
        kuma.ack("getMonitor", vec![json!(999)]).await,
        json!({"ok": false, "msg": "Cannot read properties of null (reading 'id')"})
    );

    // A full-object edit (getMonitor → merge → editMonitor).
    let mut edited = monitor.clone();
    edited["url"] = json!("https://app.example.com/ready");
    let saved = kuma.ack("editMonitor", vec![edited]).await;
    assert_eq!(
        saved,
        json!({"ok": true, "msg": "Saved.", "msgi18n": true, "monitorID": id})
    );
    kuma.event("updateMonitorIntoList").await;

    // A monitor added without retryInterval cannot be edited as a whole.
    let mut lazy = monitor_payload("fabrik:lazy", "https://lazy.example.com");
    lazy.as_object_mut().unwrap().remove("retryInterval");
    let lazy_id = kuma.ack("add", vec![lazy]).await["monitorID"]
        .as_i64()
        .unwrap();
    let lazy = kuma.ack("getMonitor", vec![json!(lazy_id)]).await["monitor"].clone();
    assert_eq!(lazy["retryInterval"], 0);
    assert_eq!(
        kuma.ack("editMonitor", vec![lazy]).await["msg"],
        "Retry interval cannot be less than 1 seconds"
    );

    let paused = kuma.ack("pauseMonitor", vec![json!(id)]).await;
    assert_eq!(
        paused,
        json!({"ok": true, "msg": "successPaused", "msgi18n": true})
    );
    let resumed = kuma.ack("resumeMonitor", vec![json!(id)]).await;
    assert_eq!(resumed["msg"], "successResumed");

    // getMonitorList acks without data and pushes the list.
    assert_eq!(
        kuma.ack("getMonitorList", vec![]).await,
        json!({"ok": true})
    );
    let list = loop {
        let list = kuma.event("monitorList").await;
        if list[0].as_object().unwrap().len() == 2 {
            break list;
        }
    };
    assert_eq!(
        list[0][id.to_string()]["url"],
        "https://app.example.com/ready"
    );
    assert_eq!(list[0][id.to_string()]["active"], true);

    // Delete acks ok even for an id that does not exist.
    let deleted = kuma.ack("deleteMonitor", vec![json!(id)]).await;
    assert_eq!(
        deleted,
        json!({"ok": true, "msg": "successDeleted", "msgi18n": true})
    );
    assert_eq!(kuma.event("deleteMonitorFromList").await, vec![json!(id)]);
    assert_eq!(kuma.ack("deleteMonitor", vec![json!(id)]).await["ok"], true);
    // Names are not unique.
    let twin = monitor_payload("fabrik:lazy", "https://lazy.example.com");
    assert_eq!(kuma.ack("add", vec![twin]).await["ok"], true);
}

#[tokio::test]
async fn tags_attach_values_to_monitors() {
    let sb = Sandbox::start().await;
    let mut kuma = Kuma::logged_in(&sb).await;
    let id = kuma
        .ack(
            "add",
            vec![monitor_payload("fabrik:web", "https://app.example.com")],
        )
        .await["monitorID"]
        .as_i64()
        .unwrap();
    let tag = kuma
        .ack(
            "addTag",
            vec![json!({"name": "managed-by", "color": "#059669"})],
        )
        .await;
    assert_eq!(tag["ok"], true);
    let tag_id = tag["tag"]["id"].as_i64().unwrap();
    // Duplicate names are allowed.
    let twin = kuma
        .ack(
            "addTag",
            vec![json!({"name": "managed-by", "color": "#059669"})],
        )
        .await;
    assert_ne!(twin["tag"]["id"], tag["tag"]["id"]);
    assert_eq!(
        kuma.ack("getTags", vec![]).await["tags"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let added = kuma
        .ack(
            "addMonitorTag",
            vec![
                json!(tag_id),
                json!(id),
                json!("fabrik:blog:01jdx3v5q6m7n8p9r0s1t2v3w4"),
            ],
        )
        .await;
    assert_eq!(added, json!({"ok": true, "msg": "successAdded"}));
    let monitor = kuma.ack("getMonitor", vec![json!(id)]).await["monitor"].clone();
    assert_eq!(monitor["tags"][0]["name"], "managed-by");
    assert_eq!(
        monitor["tags"][0]["value"],
        "fabrik:blog:01jdx3v5q6m7n8p9r0s1t2v3w4"
    );
    assert_eq!(monitor["tags"][0]["monitor_id"], id);
    let edited = kuma
        .ack(
            "editMonitorTag",
            vec![json!(tag_id), json!(id), json!("other")],
        )
        .await;
    assert_eq!(edited["msg"], "successEdited");
    let removed = kuma
        .ack(
            "deleteMonitorTag",
            vec![json!(tag_id), json!(id), json!("other")],
        )
        .await;
    assert_eq!(removed["msg"], "successDeleted");
    let monitor = kuma.ack("getMonitor", vec![json!(id)]).await["monitor"].clone();
    assert_eq!(monitor["tags"], json!([]));
    let renamed = kuma
        .ack(
            "editTag",
            vec![json!({"id": tag_id, "name": "owner", "color": "#000000"})],
        )
        .await;
    assert_eq!(renamed["tag"]["name"], "owner");
    assert_eq!(
        kuma.ack(
            "editTag",
            vec![json!({"id": 999, "name": "x", "color": "#000"})]
        )
        .await,
        json!({"ok": false, "msg": "tagNotFound"})
    );
    assert_eq!(kuma.ack("deleteTag", vec![json!(tag_id)]).await["ok"], true);
}

#[tokio::test]
async fn changes_reach_every_socket_of_the_user() {
    let sb = Sandbox::start().await;
    let mut first = Kuma::logged_in(&sb).await;
    let mut second = Kuma::logged_in(&sb).await;
    let added = first
        .ack(
            "add",
            vec![monitor_payload("fabrik:web", "https://app.example.com")],
        )
        .await;
    let id = added["monitorID"].as_i64().unwrap();
    let seen = second.event("updateMonitorIntoList").await;
    assert!(seen[0].get(id.to_string()).is_some());
}
