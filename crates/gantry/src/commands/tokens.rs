//! `gantry token create|list|revoke`.

use std::process::ExitCode;

use gantry_wire::Revoked;
use gantry_wire::tokens::{CreateToken, CreatedToken, TokenList};

use crate::args::TokenCommand;
use crate::client::{Client, segment};
use crate::output::{print_wire, short, table};

pub async fn run(client: &Client, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, role } => {
            let body = CreateToken {
                name: name.clone(),
                role: Some(role.to_string()),
            };
            let created: CreatedToken = client.post_as("/api/v1/tokens", &body).await?;
            println!("{}", created.token);
            eprintln!("token {name:?} ({role}) created; this is the only time its secret is shown");
        }
        TokenCommand::List { json } => {
            let answer: TokenList = client.get_as("/api/v1/tokens").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .tokens
                .into_iter()
                .map(|t| {
                    vec![
                        t.id,
                        t.name,
                        t.role,
                        short(Some(&t.created_at)),
                        short(t.last_used_at.as_deref()),
                        short(t.revoked_at.as_deref()),
                    ]
                })
                .collect();
            table(
                &["ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"],
                &rows,
            );
        }
        TokenCommand::Revoke { token } => {
            let _: Revoked = client
                .delete_as(&format!("/api/v1/tokens/{}", segment(&token)))
                .await?;
            println!("token {token} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
