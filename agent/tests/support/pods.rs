//! Feeding API objects straight into the pod store, for the tests of the
//! pod model that need no network.

use lifecycle_agent::pods::{PodEvent, PodStore, RawPod};
use serde_json::Value;

/// A fixed API clock (whole Unix seconds) the pod tests start from.
pub const T0: i64 = 1_795_305_400;

/// Decodes `object` as the watch would and applies it to `store`,
/// observed at `observed_ns` (Unix ns); returns the events it produced.
pub fn feed(store: &PodStore, object: Value, observed_ns: i64) -> Vec<PodEvent> {
    let pod = RawPod::from_value(object)
        .decode()
        .expect("driver objects decode");
    store.apply(&pod, observed_ns)
}

/// `metadata.uid` of a pod object.
pub fn uid_of(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .expect("the pod has a uid")
        .to_owned()
}
