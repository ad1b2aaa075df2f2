use super::*;
use crate::event_forms::decode;

/// The agent's event with `patch` merged in, decoded into the stored form.
fn stored(patch: Value) -> Value {
    let base = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.18a2f3c4d5e6f708", "namespace": "shop"},
        "eventTime": "2026-12-04T19:40:00.123456Z",
        "reportingController": "lifecycle-agent", "reportingInstance": "node-a",
        "action": "Terminating", "reason": "SidecarStoppedEarly", "type": "Warning",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "shop", "name": "web"},
        "note": "stopped"});
    let body = crate::merge_patch::apply(&base, &patch);
    decode(Resource::EventsV1, body).unwrap().event
}

fn fields(errors: &[FieldError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.body()))
        .collect()
}

#[test]
fn a_well_formed_event_passes() {
    assert_eq!(
        create_errors(Resource::EventsV1, &stored(json!({}))),
        vec![]
    );
}

#[test]
fn strict_rules_name_core_fields() {
    let event = stored(json!({
        "eventTime": null, "type": "Info", "note": "x".repeat(1025),
        "deprecatedCount": 2, "deprecatedSource": {"component": "me"},
        "deprecatedFirstTimestamp": "2026-12-04T19:40:00Z",
        "series": {"count": 1}}));
    let found = fields(&create_errors(Resource::EventsV1, &event));
    assert_eq!(
        found,
        vec![
            "series.count: Invalid value: \"\": should be at least 2",
            "series.lastObservedTime: Required value",
            "eventTime: Required value",
            "type: Invalid value: \"\": has invalid value: Info",
            "firstTimestamp: Invalid value: \"\": needs to be unset",
            "count: Invalid value: \"\": needs to be unset",
            "source: Invalid value: \"\": needs to be unset",
        ],
        "without eventTime the legacy checks skip the reporting fields"
    );
}

#[test]
fn reporting_fields_are_required_and_bounded() {
    let event = stored(
        json!({"reportingController": "", "reportingInstance": "i".repeat(129),
                              "action": null, "reason": "r".repeat(129),
                              "note": "n".repeat(1025)}),
    );
    let found = fields(&create_errors(Resource::EventsV1, &event));
    assert_eq!(found[0], "reportingController: Required value");
    assert!(
        found[1]
            .starts_with("reportingController: Invalid value: \"\": name part must be non-empty")
    );
    assert!(found.contains(
        &"reportingInstance: Invalid value: \"\": can have at most 128 characters".to_owned()
    ));
    assert!(found.contains(&"action: Required value".to_owned()));
    assert!(
        found.contains(&"reason: Invalid value: \"\": can have at most 128 characters".to_owned())
    );
    assert!(
        found
            .contains(&"message: Invalid value: \"\": can have at most 1024 characters".to_owned())
    );
}

#[test]
fn regarding_namespace_rules_follow_the_real_server() {
    // With eventTime set, only an empty regarding namespace outside
    // default/kube-system is refused; a different one is accepted.
    let other = stored(json!({"regarding": {"namespace": "elsewhere"}}));
    assert!(create_errors(Resource::EventsV1, &other).is_empty());
    let empty = stored(json!({"regarding": {"namespace": null}}));
    assert_eq!(
        fields(&create_errors(Resource::EventsV1, &empty)),
        vec!["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"]
    );
    // Old-style core events (no eventTime) must match exactly.
    let old = decode(
        Resource::Events,
        json!({"metadata": {"name": "a", "namespace": "shop"},
               "involvedObject": {"kind": "Pod", "name": "p", "namespace": "elsewhere"}}),
    )
    .unwrap()
    .event;
    assert_eq!(create_errors(Resource::Events, &old).len(), 1);
}

#[test]
fn updates_allow_series_but_not_other_changes() {
    let old = stored(json!({}));
    let with_series = stored(json!({"series": {"count": 2,
                                               "lastObservedTime": "2026-12-04T19:41:00.000000Z"}}));
    assert!(update_errors(Resource::EventsV1, &with_series, &old).is_empty());
    let bad_series = stored(json!({"series": {"count": 1, "lastObservedTime": null}}));
    assert_eq!(
        update_errors(Resource::EventsV1, &bad_series, &old).len(),
        2
    );
    let renoted = stored(json!({"note": "changed", "reason": "Other"}));
    let found = fields(&update_errors(Resource::EventsV1, &renoted, &old));
    assert_eq!(
        found,
        vec![
            "reason: Invalid value: \"Other\": field is immutable",
            "message: Invalid value: \"changed\": field is immutable",
            "reason: Invalid value: \"Other\": field is immutable",
        ]
    );
    let error = invalid(
        Resource::EventsV1,
        "e",
        &update_errors(Resource::EventsV1, &renoted, &old),
    );
    assert_eq!(
        error.message,
        "Event.events.k8s.io \"e\" is invalid: [reason: Invalid value: \"Other\": field is \
         immutable, message: Invalid value: \"changed\": field is immutable]"
    );
    assert_eq!(
        error.details.unwrap()["causes"].as_array().unwrap().len(),
        3
    );
    assert!(update_errors(Resource::Events, &renoted, &old).is_empty());
}
