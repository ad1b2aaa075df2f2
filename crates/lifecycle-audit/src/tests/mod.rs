//! Rule tests on hand-written record sequences, positive and negative.

mod bypass;
mod damaged;
mod deps;
mod engine;
mod kill;
mod recovery;
mod runtime;
mod startup;
mod termination;
mod timeline;

use super::testing::{
    ORDERED_STOP_HOLDS, Proc, Script, assert_held, istio_legacy, istio_native, kinds, one, outcome,
    problems,
};

/// A running native-Istio pod: proxy listening from 20 ms, app from 700 ms.
fn running_native(grace: i64) -> (Script, Proc, Proc) {
    let mut s = Script::new(istio_native(true, grace));
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
    s.api_running("istio-proxy");
    s.at(20.0);
    for port in [15021, 15001, 15006] {
        s.listen(&proxy, "0.0.0.0", port, 1337);
    }
    s.at(600.0).api_started("istio-proxy");
    s.at(700.0);
    let app = s.start("app", "/app");
    s.api_running("app");
    (s, proxy, app)
}

fn running_legacy(grace: i64) -> (Script, Proc, Proc) {
    let mut s = Script::new(istio_legacy(grace));
    s.at(0.0);
    let app = s.start("app", "/app");
    s.api_running("app");
    s.at(5.0);
    let proxy = s.start("istio-proxy", "/usr/local/bin/pilot-agent");
    s.api_running("istio-proxy");
    s.at(30.0);
    s.listen(&proxy, "0.0.0.0", 15001, 1337);
    (s, proxy, app)
}
