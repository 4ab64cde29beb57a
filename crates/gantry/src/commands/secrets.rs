//! `gantry secret set|list|delete`. `set` reads the value from stdin, so
//! that it is in no shell history and no process list.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use gantry_wire::Deleted;
use gantry_wire::secrets::{Secret, SecretList, SetSecret};

use crate::client::{Client, segment};
use crate::output::{print_wire, short, table};

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create or replace a secret; the value is read from stdin (one
    /// trailing newline is dropped).
    Set { name: String },
    /// List secrets (names and times; values are never shown).
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret (steps that name it then fail to start).
    Delete { name: String },
}

pub async fn run(client: &Client, command: SecretCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretCommand::Set { name } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("cannot read the secret's value from stdin")?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            let _: Secret = client
                .put_as(
                    &format!("/api/v1/secrets/{}", segment(&name)),
                    &SetSecret { value },
                )
                .await?;
            eprintln!("secret {name:?} set");
        }
        SecretCommand::List { json } => {
            let answer: SecretList = client.get_as("/api/v1/secrets").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .secrets
                .into_iter()
                .map(|s| {
                    vec![
                        s.name,
                        short(Some(&s.created_at)),
                        short(Some(&s.updated_at)),
                    ]
                })
                .collect();
            table(&["NAME", "CREATED", "UPDATED"], &rows);
        }
        SecretCommand::Delete { name } => {
            let _: Deleted = client
                .delete_as(&format!("/api/v1/secrets/{}", segment(&name)))
                .await?;
            println!("secret {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
