//! The main job, end to end: a persistent map used from plain synchronous code.
//!
//! Runs against an embedded DynamoDB Local that starts by itself (in memory, on a free loopback
//! port) unless `DYNAMODICT_ENDPOINT` points at an existing endpoint:
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use dynamodict::{DynamoDbDict, Serializer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    visits: u32,
}

fn main() -> Result<(), dynamodict::Error> {
    // A typed map in the "profiles" namespace of the "quickstart" table (created on demand).
    let profiles: DynamoDbDict<Profile> = DynamoDbDict::builder("quickstart")
        .namespace("profiles")
        .serializer(Serializer::bincode().signed("example secret", "profiles"))
        .local()
        .build()?;
    profiles.clear()?;
    println!(
        "map: table {:?}, namespace {:?}",
        profiles.table(),
        profiles.namespace()
    );

    let alice = Profile {
        name: "Alice".into(),
        visits: 1,
    };
    let previous = profiles.insert("alice", &alice)?;
    println!("insert alice -> previous {previous:?}");

    let bob = profiles.setdefault(
        "bob",
        Profile {
            name: "Bob".into(),
            visits: 0,
        },
    )?;
    println!("setdefault bob -> {bob:?}");

    let updated = Profile { visits: 2, ..alice };
    let previous = profiles.insert("alice", &updated)?;
    println!("insert alice again -> previous {previous:?}");

    profiles.insert_many((0..40).map(|i| {
        (
            format!("guest-{i}"),
            Profile {
                name: format!("Guest {i}"),
                visits: i,
            },
        )
    }))?;
    println!("len after insert_many -> {}", profiles.len()?);

    let some = profiles.get_many(&["alice", "guest-3", "nobody"])?;
    println!("get_many -> {some:?}");

    profiles.insert_with_ttl(
        "session",
        &Profile {
            name: "temp".into(),
            visits: 0,
        },
        Duration::from_secs(1),
    )?;
    println!(
        "session before expiry -> {:?}",
        profiles.get("session")?.map(|p| p.name)
    );
    std::thread::sleep(Duration::from_millis(2100));
    println!("session after expiry -> {:?}", profiles.get("session")?);

    let guests: Vec<String> = profiles
        .keys()
        .filter_map(Result::ok)
        .filter(|k| k.starts_with("guest-"))
        .collect();
    profiles.bulk_delete(&guests)?;
    let mut names: Vec<String> = profiles
        .values()
        .map(|p| p.map(|p| p.name))
        .collect::<Result<_, _>>()?;
    names.sort();
    println!("values after bulk_delete -> {names:?}");

    println!("pop bob -> {:?}", profiles.pop("bob")?);
    println!("contains bob -> {}", profiles.contains_key("bob")?);
    profiles.clear()?;
    println!("len after clear -> {}", profiles.len()?);
    Ok(())
}
