//! Every engine the harness can run (DynamoDB Local, moto, dynalite) as an owned server: it
//! answers the SDK, dies on `kill`, comes back on the same port with `restart`, and leaves no
//! process behind when dropped. Installs moto / dynalite on first use (about a minute).

use std::process::Command;

use dynamodict::local::{DynamoDbLocal, LocalEngine, LocalOptions};

use crate::support::Raw;

/// The `pgrep -f` pattern that matches this engine's server on `port` (and nothing else).
fn process_pattern(engine: LocalEngine, port: u16) -> String {
    let program = match engine {
        LocalEngine::DynamoDbLocal => "DynamoDBLocal\\.jar",
        LocalEngine::Moto => "moto\\.server",
        LocalEngine::Dynalite => "dynalite/cli\\.js",
        other => panic!("no process pattern for {other}"),
    };
    format!("{program}.* {port}( |$)")
}

/// The pids `pgrep -f` finds for this engine's server on `port`.
fn pgrep(engine: LocalEngine, port: u16) -> Vec<u32> {
    let output = Command::new("pgrep")
        .arg("-f")
        .arg(process_pattern(engine, port))
        .output()
        .expect("running pgrep (package procps)");
    // 0: found, 1: none found; anything else is a pgrep error.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "pgrep failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|pid| pid.parse().expect("pgrep prints pids"))
        .collect()
}

/// The tables the server lists, through the SDK.
fn list_tables(endpoint: &str) -> Vec<String> {
    let raw = Raw::at(endpoint);
    raw.block(raw.client.list_tables().send())
        .unwrap_or_else(|e| panic!("ListTables on {endpoint}: {e:?}"))
        .table_names
        .unwrap_or_default()
}

fn kill_restart_drop(engine: LocalEngine) {
    let mut server = DynamoDbLocal::start(LocalOptions {
        engine,
        ..LocalOptions::default()
    })
    .unwrap_or_else(|e| panic!("starting {engine}: {e}"));
    assert_eq!(server.engine(), engine);
    let port = server.port();
    let endpoint = server.endpoint().to_owned();
    let pid = server.pid().expect("an owned server has a pid");
    assert_eq!(pgrep(engine, port), vec![pid], "the server process itself");
    list_tables(&endpoint);

    server.kill().expect("kill");
    assert_eq!(server.pid(), None);
    assert_eq!(
        pgrep(engine, port),
        Vec::<u32>::new(),
        "{engine} survived kill"
    );

    server.restart().expect("restart");
    assert_eq!(server.port(), port);
    assert_eq!(server.endpoint(), endpoint);
    let pid2 = server.pid().expect("restarted");
    assert_ne!(pid2, pid);
    assert_eq!(pgrep(engine, port), vec![pid2]);
    list_tables(&endpoint);

    drop(server);
    assert_eq!(
        pgrep(engine, port),
        Vec::<u32>::new(),
        "{engine} survived drop"
    );
}

#[test]
fn dynamodb_local_kill_restart_drop() {
    kill_restart_drop(LocalEngine::DynamoDbLocal);
}

#[test]
fn moto_kill_restart_drop() {
    kill_restart_drop(LocalEngine::Moto);
}

#[test]
fn dynalite_kill_restart_drop() {
    kill_restart_drop(LocalEngine::Dynalite);
}
