//! Golden tests of the error messages: each failure is provoked for real (DynamoDB Local, a
//! closed port, a server that speaks no TLS or no DynamoDB, a child process without any AWS
//! credentials) and its message compared in full, with only the variable parts (ports, sizes)
//! filled in. A change of wording shows up here as a diff.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use dynamodict::cache::DynamoDbCache;
use dynamodict::local::LocalEngine;
use dynamodict::{DynamoDbDict, Error, Serializer, Timeouts};
use serde_bytes::ByteBuf;

use crate::support::{self, builder};

const SHORT: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    attempt: Duration::from_secs(3),
    operation: Duration::from_secs(4),
};

/// Set in the child processes of the tests that need an environment of their own.
const CHILD_ENV: &str = "DYNAMODICT_ERROR_MESSAGES_CHILD";

/// Compares `err`'s message with `template`, whose `{name}`s are replaced by `vars` first. A
/// message is one line and never shows a `Debug` structure.
fn assert_message(err: &Error, template: &str, vars: &[(&str, String)]) {
    let mut expected = template.to_owned();
    for (name, value) in vars {
        expected = expected.replace(&format!("{{{name}}}"), value);
    }
    let actual = err.to_string();
    assert_eq!(actual, expected, "\n(error: {err:?})");
    assert_one_line(&actual);
}

fn assert_one_line(message: &str) {
    assert!(!message.contains('\n'), "more than one line: {message}");
    for debug in [
        "Some(",
        "{ source",
        "DispatchFailure",
        "ConnectorError",
        "Os {",
    ] {
        assert!(
            !message.contains(debug),
            "Debug output {debug:?} in: {message}"
        );
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that answers every connection with `answer` (then closes it), for `connections`
/// connections. Returns its port.
fn answering_server(answer: &'static [u8], connections: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(answer);
        }
    });
    port
}

fn build_err<V>(b: dynamodict::DictBuilder<V>) -> Error {
    match b.build() {
        Ok(_) => panic!("the build was expected to fail"),
        Err(err) => err,
    }
}

// ---- unreachable endpoints -----------------------------------------------------------------

/// The error of building a map on `endpoint`, one attempt, short timeouts.
fn error_at(endpoint: String) -> Error {
    build_err(
        DynamoDbDict::<u8>::builder("some-table")
            .endpoint_url(endpoint)
            .max_attempts(1)
            .timeouts(SHORT),
    )
}

#[test]
fn unreachable_endpoint_names_the_url_and_the_cause() {
    let port = closed_port();
    let err = error_at(format!("http://127.0.0.1:{port}"));
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert_message(
        &err,
        "could not reach DynamoDB at http://127.0.0.1:{port}: connection refused",
        &[("port", port.to_string())],
    );
}

/// In a child process: builds a map with one attempt and short timeouts, and prints the error
/// as `MESSAGE <variant>: <message>` for [`assert_child_printed`].
fn print_build_error(builder: dynamodict::DictBuilder<u8>) {
    let err = build_err(builder.max_attempts(1).timeouts(SHORT));
    let variant = format!("{err:?}");
    let variant = variant.split([' ', '(', '{']).next().unwrap_or("");
    // On a line of its own: the test harness prints the test's name before it.
    println!("\nMESSAGE {variant}: {err}");
}

/// Fails unless the child process printed exactly the line `expected`.
fn assert_child_printed(out: &std::process::Output, expected: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l == expected),
        "expected the line\n{expected}\nin the child's output:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unreachable_endpoint_from_the_environment_says_so() {
    let port = closed_port();
    let out = support::run_child(
        "error_messages::child_build_local",
        &[
            (CHILD_ENV, "1".to_owned()),
            (
                dynamodict::local::ENDPOINT_ENV,
                format!("http://127.0.0.1:{port}"),
            ),
        ],
    );
    let expected = format!(
        "MESSAGE Connection: could not reach DynamoDB at http://127.0.0.1:{port} (from \
         DYNAMODICT_ENDPOINT): connection refused"
    );
    assert_child_printed(&out, &expected);
}

/// Builds a map with `.local()` and prints the error (run by the test above in a child
/// process, whose `DYNAMODICT_ENDPOINT` points at a closed port).
#[test]
#[ignore = "run by unreachable_endpoint_from_the_environment_says_so in a child process"]
fn child_build_local() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    print_build_error(DynamoDbDict::<u8>::builder("some-table").local());
}

#[test]
fn unknown_host_says_the_name_could_not_be_resolved() {
    // Not loopback, so no dummy credentials: static ones keep the credentials chain out of it.
    let err = build_err(
        DynamoDbDict::<u8>::builder("some-table")
            .endpoint_url("http://dynamodict-no-such-host.invalid:8000")
            .region("us-east-1")
            .credentials("AKIDEXAMPLE", "example-secret", None)
            .max_attempts(1)
            .timeouts(SHORT),
    );
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    // The resolver's own words vary by platform ("Name or service not known", ...).
    let message = err.to_string();
    let prefix = "could not reach DynamoDB at http://dynamodict-no-such-host.invalid:8000: the \
                  host name could not be resolved (failed to lookup address information: ";
    assert!(
        message.starts_with(prefix) && message.ends_with(')'),
        "{message}"
    );
    assert_one_line(&message);
}

#[test]
fn a_plain_http_server_behind_https_is_a_tls_failure() {
    let port = answering_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 4);
    let err = error_at(format!("https://127.0.0.1:{port}"));
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert_message(
        &err,
        "could not reach DynamoDB at https://127.0.0.1:{port}: TLS handshake failed: received \
         corrupt message of type InvalidContentType",
        &[("port", port.to_string())],
    );
}

#[test]
fn a_server_that_hangs_up_is_a_broken_connection() {
    let port = answering_server(b"", 4);
    let err = error_at(format!("http://127.0.0.1:{port}"));
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert_message(
        &err,
        "could not reach DynamoDB at http://127.0.0.1:{port}: connection closed before message \
         completed",
        &[("port", port.to_string())],
    );
}

#[test]
fn a_server_that_is_not_dynamodb_is_named() {
    let port = answering_server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 4);
    let err = error_at(format!("http://127.0.0.1:{port}"));
    assert!(matches!(err, Error::Service { .. }), "{err:?}");
    assert_message(
        &err,
        "DynamoDB error HTTP 404: the endpoint at http://127.0.0.1:{port} answered HTTP 404 \
         without a DynamoDB error code; check that it is a DynamoDB endpoint",
        &[("port", port.to_string())],
    );
}

// ---- sizes ---------------------------------------------------------------------------------

#[test]
fn too_large_with_large_values_off_names_the_option() {
    let d: DynamoDbDict<ByteBuf> = builder("golden-off").large_values(false).build().unwrap();
    let err = d
        .set("k", ByteBuf::from(vec![7u8; 500 * 1024]))
        .unwrap_err();
    let Error::ItemTooLarge { size, .. } = &err else {
        panic!("{err:?}")
    };
    assert_message(
        &err,
        "the value for key \"k\" makes an item of {size} bytes, over DynamoDB's 400 KB item limit \
         (409600 bytes), and large values are off (`.large_values(false)`): turn them on with \
         `.large_values(true)` to split such values across several items (up to \
         `max_value_size`, 16 MiB by default), or store a smaller value",
        &[("size", size.to_string())],
    );
}

#[test]
fn too_large_over_max_value_size_names_the_option_and_its_value() {
    let d: DynamoDbDict<ByteBuf> = builder("golden-max")
        .max_value_size(1024 * 1024)
        .build()
        .unwrap();
    let err = d
        .insert("big", ByteBuf::from(vec![7u8; 2 * 1024 * 1024]))
        .unwrap_err();
    assert_message(
        &err,
        // bincode: a 5-byte length, then the bytes.
        "the value for key \"big\" encodes to 2097157 bytes, over this map's `max_value_size` of \
         1048576 bytes (1 MiB; large values are on): raise it with `.max_value_size(..)` (at \
         most 64 MiB), or store a smaller value",
        &[],
    );
}

// ---- stored values -------------------------------------------------------------------------

#[test]
fn a_value_of_another_type_names_both_serializers_and_keeps_the_detail() {
    let ns = support::unique("golden-type");
    let strings: DynamoDbDict<String> = support::in_namespace(&ns);
    strings.set("s", "hello".into()).unwrap();
    let bytes: DynamoDbDict<u8> = support::in_namespace(&ns);
    let err = bytes.get("s").unwrap_err();
    assert!(matches!(err, Error::Deserialize { .. }), "{err:?}");
    assert_message(
        &err,
        "could not deserialize the value stored at key \"s\": it does not match this map's value \
         type (written by serializer \"bincode2\", read by serializer \"bincode2\"): read it \
         with the type it was written with, or overwrite or remove the key (decoder: 5 trailing \
         bytes after the value)",
        &[],
    );
    // Iteration reports it the same way.
    let listed: Vec<_> = bytes.items().collect();
    match listed.as_slice() {
        [Err(e)] => assert_eq!(e.to_string(), err.to_string()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_value_of_another_serializer_says_what_to_do() {
    let ns = support::unique("golden-serializer");
    let strings: DynamoDbDict<String> = support::in_namespace(&ns);
    strings.set("s", "hello".into()).unwrap();
    let json: DynamoDbDict<String> = DynamoDbDict::builder(support::TABLE)
        .namespace(&ns)
        .serializer(Serializer::json())
        .local()
        .build()
        .unwrap();
    assert_message(
        &json.get("s").unwrap_err(),
        "the value stored at key \"s\" was written with serializer \"bincode2\", but this map \
         uses \"json\": read it with a map using serializer \"bincode2\", or overwrite or remove \
         the key",
        &[],
    );
}

// ---- credentials ---------------------------------------------------------------------------

#[test]
fn missing_credentials_say_what_to_set() {
    let home = std::env::temp_dir().join(support::unique("dynamodict-empty-home"));
    std::fs::create_dir_all(&home).unwrap();
    // Nothing inherited: no AWS_* variables, no profile, no instance metadata.
    let out = support::child_command("error_messages::child_build_without_credentials", &[])
        .env_clear()
        .env(CHILD_ENV, "1")
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("starting the child test process");
    let _ = std::fs::remove_dir_all(&home);
    let expected = "MESSAGE Credentials: no AWS credentials were found: pass them with \
                    `.credentials(..)`, set AWS_PROFILE (a profile in ~/.aws/config) or \
                    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use `.local()` for the \
                    embedded DynamoDB Local";
    assert_child_printed(&out, expected);
}

/// Builds a map on AWS's own endpoint without any credentials (run by the test above, in a
/// child process with an empty environment: nothing is ever sent).
#[test]
#[ignore = "run by missing_credentials_say_what_to_set in a child process"]
fn child_build_without_credentials() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    print_build_error(DynamoDbDict::<u8>::builder("some-table").region("eu-west-1"));
}

#[test]
fn an_sdk_config_without_credentials_says_so() {
    let sdk_config = dynamodict::aws_config::SdkConfig::builder()
        .region(dynamodict::aws_config::Region::new("us-east-1"))
        .endpoint_url(support::endpoint())
        .behavior_version(dynamodict::aws_config::BehaviorVersion::latest())
        .build();
    let err = build_err(
        DynamoDbDict::<u8>::builder(support::TABLE)
            .sdk_config(&sdk_config)
            .max_attempts(1),
    );
    assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
    assert_message(
        &err,
        "no AWS credentials were found: the SDK configuration given to `.sdk_config(..)` or \
         `.client(..)` has no credentials provider; give it one, or pass them with \
         `.credentials(..)`",
        &[],
    );
}

#[test]
fn rejected_credentials_say_so() {
    if support::skip_on(
        &[LocalEngine::Moto, LocalEngine::Dynalite],
        "the server accepts any access key",
    ) {
        return;
    }
    // DynamoDB Local accepts only alphanumeric access key ids.
    let err = build_err(
        DynamoDbDict::<u8>::builder(support::TABLE)
            .endpoint_url(support::endpoint())
            .credentials("not-alphanumeric", "example-secret", None)
            .max_attempts(1),
    );
    assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
    assert_message(
        &err,
        "DynamoDB rejected the AWS credentials (UnrecognizedClientException: The Access Key ID \
         or security token is invalid.); check the access key id, the secret key and the \
         session token, or the profile they come from",
        &[],
    );
}

// ---- conflicting settings ------------------------------------------------------------------

#[test]
fn endpoint_url_and_local_are_refused_together() {
    let expected = "invalid configuration: both `.endpoint_url(\"http://127.0.0.1:8000\")` and \
                    `.local()` set the endpoint: choose one (`.local()` starts the embedded \
                    DynamoDB Local, or uses DYNAMODICT_ENDPOINT when that is set)";
    for err in [
        build_err(
            DynamoDbDict::<u8>::builder("some-table")
                .endpoint_url("http://127.0.0.1:8000")
                .local(),
        ),
        build_err(
            DynamoDbDict::<u8>::builder("some-table")
                .local()
                .endpoint_url("http://127.0.0.1:8000"),
        ),
        DynamoDbCache::builder("some-table")
            .local()
            .endpoint_url("http://127.0.0.1:8000")
            .build()
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert_message(&err, expected, &[]);
    }
}

#[test]
fn an_sdk_config_endpoint_and_local_are_refused_together() {
    let sdk_config = dynamodict::aws_config::SdkConfig::builder()
        .region(dynamodict::aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:8000")
        .behavior_version(dynamodict::aws_config::BehaviorVersion::latest())
        .build();
    let err = build_err(
        DynamoDbDict::<u8>::builder("some-table")
            .sdk_config(&sdk_config)
            .local(),
    );
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert_message(
        &err,
        "invalid configuration: the SDK configuration given to `.sdk_config(..)` has the \
         endpoint \"http://127.0.0.1:8000\", and `.local()` sets another: choose one (remove the \
         endpoint from the SdkConfig, or drop `.local()`)",
        &[],
    );
}
