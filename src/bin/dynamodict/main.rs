//! `dynamodict`: a command-line tool for the maps and response caches that the `dynamodict`
//! crate stores in DynamoDB (feature `cli`). See `dynamodict --help` and the README's
//! "Command-line tool" section.

mod args;
mod cache;
mod connect;
mod ddbjson;
mod error;
mod export;
mod output;
mod progress;
mod show;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::connect::Connection;
use crate::error::{CliError, CliResult};
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Output::default();
    match run(&cli, &mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("dynamodict: {err}");
            ExitCode::from(u8::try_from(err.code).unwrap_or(1))
        }
    }
}

/// Runs the command; on error, `out` holds nothing to print.
fn run(cli: &Cli, out: &mut Output) -> CliResult {
    // Starting the embedded DynamoDB Local blocks: done before the runtime runs.
    let endpoint = connect::local_endpoint(&cli.connection)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(async {
        let conn = Connection::new(&cli.connection, endpoint).await?;
        dispatch(&conn, &cli.command, out).await
    });
    if result.is_err() {
        out.discard();
    }
    result
}

async fn dispatch(conn: &Connection, command: &Command, out: &mut Output) -> CliResult {
    match command {
        Command::Tables => show::tables(conn, out).await,
        Command::Namespaces { table } => show::namespaces(conn, table, out).await,
        Command::Count { table, ns } => show::count(conn, table, &ns.namespace, out).await,
        Command::Keys { table, ns } => show::keys(conn, table, &ns.namespace, out).await,
        Command::Get { table, key, ns } => show::get(conn, table, &ns.namespace, key, out).await,
        Command::Rm { table, keys, ns } => show::rm(conn, table, &ns.namespace, keys, out).await,
        Command::Clear { table, ns, yes } => {
            show::clear(conn, table, &ns.namespace, *yes, out).await
        }
        Command::Sweep { table, ns } => show::sweep(conn, table, &ns.namespace, out).await,
        Command::Export { table, ns, output } => {
            export::export(conn, table, &ns.namespace, output.as_deref(), out).await
        }
        Command::Import {
            table,
            namespace,
            input,
        } => export::import(conn, table, namespace.as_deref(), input.as_deref(), out).await,
        Command::Cache(command) => cache::run(conn, command, out).await,
    }
}
