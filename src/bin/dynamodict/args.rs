//! The command line: global connection options and one subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Look at, export and import the maps and response caches that dynamodict stores in DynamoDB.
///
/// Values are shown decoded where their format allows it (JSON and DynamoDB documents, as
/// pretty JSON) and as size and base64 otherwise (bincode, compressed or signed bytes).
/// Errors go to stderr with a non-zero exit code; progress bars go to stderr when it is a
/// terminal.
#[derive(Debug, Parser)]
#[command(name = "dynamodict", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where DynamoDB is, for every command.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Send requests to this endpoint (DynamoDB Local, a proxy, a VPC endpoint). A loopback
    /// endpoint gets dummy credentials and region us-east-1 unless given.
    #[arg(long, global = true, value_name = "URL", conflicts_with = "local")]
    pub endpoint: Option<String>,
    /// The AWS region (otherwise AWS_REGION or the profile's region).
    #[arg(long, global = true, value_name = "R")]
    pub region: Option<String>,
    /// The AWS profile to take credentials and region from (otherwise AWS_PROFILE or the
    /// default chain).
    #[arg(long, global = true, value_name = "P")]
    pub profile: Option<String>,
    /// Use the endpoint in DYNAMODICT_ENDPOINT or, without it, start an embedded, in-memory
    /// DynamoDB Local that lives as long as this command.
    #[arg(long, global = true)]
    pub local: bool,
}

/// The namespace of a map.
#[derive(Debug, Args)]
pub struct NamespaceArg {
    /// The map's namespace.
    #[arg(long, short = 'n', value_name = "NS", default_value = "default")]
    pub namespace: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the tables.
    Tables,
    /// List the namespaces of a table (maps, and caches' `<name>.responses` and
    /// `<name>.redirects`).
    ///
    /// Cost: this scans the partition keys of the WHOLE table (a Scan projecting `pk` only).
    /// DynamoDB charges a Scan for the items it reads, whole, whatever it returns: listing
    /// the namespaces of a 10 GB table reads 10 GB. Every other command reads one namespace
    /// only.
    Namespaces {
        /// The table.
        table: String,
    },
    /// Count the live (unexpired) values of a namespace (exact: a COUNT query per shard).
    Count {
        /// The table.
        table: String,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// List the keys of a namespace's live values, one per line.
    Keys {
        /// The table.
        table: String,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Print a value: JSON and DynamoDB documents as pretty JSON, anything else as its size and
    /// base64. A missing or expired key exits with code 3.
    ///
    /// Large values are joined from their chunks. Signatures are not checked: a signed
    /// document is shown as stored; signed or compressed bytes are shown as base64.
    Get {
        /// The table.
        table: String,
        /// The key.
        key: String,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Delete keys (missing keys are reported on stderr, not errors).
    Rm {
        /// The table.
        table: String,
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Delete every value of a namespace (other namespaces are untouched).
    Clear {
        /// The table.
        table: String,
        #[command(flatten)]
        ns: NamespaceArg,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Write every item of a namespace, exactly as stored (DynamoDB JSON, one item per line,
    /// after a header line), including expired values and the chunks of large values.
    Export {
        /// The table.
        table: String,
        #[command(flatten)]
        ns: NamespaceArg,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write back the items of an export (BatchWriteItem). The whole input is checked before
    /// anything is written; the table is created if missing.
    Import {
        /// The table.
        table: String,
        /// Import into this namespace (default: the one the export was taken from).
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
        /// Read from this file instead of stdin.
        #[arg(long, short = 'i', value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Reclaim the storage of large values no key refers to any more (older than the grace
    /// period, 15 minutes), and print what was reclaimed.
    Sweep {
        /// The table.
        table: String,
        #[command(flatten)]
        ns: NamespaceArg,
    },
    /// Look at a response cache (DynamoDbCache).
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the distinct URLs of the saved responses, sorted.
    Urls(CacheArgs),
    /// Count the saved responses (fresh, expired, undecodable) and redirect aliases.
    Stats(CacheArgs),
    /// Delete the expired responses and the redirect aliases pointing to them.
    PurgeExpired(CacheArgs),
}

/// Which cache, and how its entries are decoded.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The table.
    pub table: String,
    /// The cache's namespace (its responses are in `<NS>.responses`).
    #[arg(long, short = 'n', value_name = "NS", default_value = "http_cache")]
    pub namespace: String,
    /// The serializer the cache was built with.
    #[arg(long, value_enum, default_value_t = SerializerArg::Document)]
    pub serializer: SerializerArg,
    /// The secret key of a signed cache.
    #[arg(long, env = "DYNAMODICT_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The salt of a signed cache.
    #[arg(long, default_value = dynamodict::cache::DEFAULT_SALT)]
    pub salt: String,
}

/// The serializers a cache can be built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SerializerArg {
    /// DynamoDB documents (the cache's default).
    Document,
    /// JSON.
    Json,
    /// bincode.
    Bincode,
}
