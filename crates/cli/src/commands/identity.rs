//! `edgefn login`, `edgefn user …`, `edgefn token …`, `edgefn project …` and
//! `edgefn audit …`: accounts, credentials, projects and the audit log.

use anyhow::bail;
use clap::{Args, Subcommand};
use comfy_table::Table;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, Login, segment};

/// Prints `rows` as JSON or as a table of `columns` (header, field).
fn print_rows(client: &Client, rows: &Value, columns: &[(&str, &str)]) -> anyhow::Result<()> {
    if client.json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING).set_header(columns.iter().map(|(h, _)| *h));
    for row in rows.as_array().into_iter().flatten() {
        table.add_row(columns.iter().map(|(_, field)| match &row[*field] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        }));
    }
    println!("{table}");
    Ok(())
}

/// Prints one JSON answer, or `text` unless `--json`.
fn print_one(client: &Client, value: &Value, text: String) -> anyhow::Result<()> {
    if client.json {
        println!("{}", serde_json::to_string_pretty(value)?)
    } else {
        println!("{text}")
    }
    Ok(())
}

/// Arguments of `edgefn login`.
#[derive(Args)]
pub struct LoginCommand {
    #[command(flatten)]
    client: ClientArgs,
}

impl LoginCommand {
    /// Checks the server and token, then saves them for later commands.
    pub async fn execute(self) -> anyhow::Result<()> {
        let client = Client::new(&self.client)?;
        let me = client.send(client.request(Method::GET, "/api/v1/me")).await?;
        let path = Login { url: client.url().to_string(), token: client.token().to_string() }.save()?;
        println!(
            "logged in to {} as {} ({}); saved to {}",
            client.url(),
            me["user"]["name"].as_str().unwrap_or("?"),
            me["user"]["role"].as_str().unwrap_or("?"),
            path.display()
        );
        Ok(())
    }
}

/// `edgefn user`.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (admins); prints its first token once.
    Create {
        /// Login name.
        name: String,
        /// `user` or `admin`.
        #[arg(long, default_value = "user")]
        role: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List users (admins).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Disable a user: its tokens and JWTs are refused from now on (admins).
    Disable {
        /// Name or id.
        user: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Enable a disabled user again (admins).
    Enable {
        /// Name or id.
        user: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl UserCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            Self::Create { name, role, client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::POST, "/api/v1/users").json(&json!({"name": name, "role": role}))).await?;
                print_one(
                    &client,
                    &r,
                    format!(
                        "created {} {name}\ntoken (shown once): {}",
                        r["user"]["role"].as_str().unwrap_or("?"),
                        r["token"].as_str().unwrap_or("?")
                    ),
                )
            }
            Self::List { client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::GET, "/api/v1/users")).await?;
                print_rows(
                    &client,
                    &r["users"],
                    &[("ID", "id"), ("NAME", "name"), ("ROLE", "role"), ("DISABLED", "disabled"), ("CREATED", "createdAt")],
                )
            }
            Self::Disable { user, client } => set_disabled(&client, &user, true).await,
            Self::Enable { user, client } => set_disabled(&client, &user, false).await,
        }
    }
}

async fn set_disabled(client: &ClientArgs, user: &str, disabled: bool) -> anyhow::Result<()> {
    let client = Client::new(client)?;
    let r = client
        .send(client.request(Method::PATCH, &format!("/api/v1/users/{}", segment(user))).json(&json!({"disabled": disabled})))
        .await?;
    print_one(&client, &r, format!("{} {user}", if disabled { "disabled" } else { "enabled" }))
}

/// `edgefn token`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once and never shown again.
    Create {
        /// What it is for.
        name: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// For another user (admins).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List your tokens (admins: --all for everyone's).
    List {
        /// Every user's tokens.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl TokenCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            Self::Create { name, expires_in_days, user, client } => {
                let client = Client::new(&client)?;
                let body = json!({"name": name, "expiresInDays": expires_in_days, "user": user});
                let r = client.send(client.request(Method::POST, "/api/v1/tokens").json(&body)).await?;
                let expiry = r["expiresAt"].as_str().map_or("never expires".to_string(), |at| format!("expires {at}"));
                print_one(
                    &client,
                    &r,
                    format!("token {} ({expiry}); shown once:\n{}", r["id"].as_str().unwrap_or("?"), r["token"].as_str().unwrap_or("?")),
                )
            }
            Self::List { all, client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::GET, &format!("/api/v1/tokens?all={all}"))).await?;
                let columns = [
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("USER", "userId"),
                    ("CREATED", "createdAt"),
                    ("EXPIRES", "expiresAt"),
                    ("REVOKED", "revokedAt"),
                ];
                print_rows(&client, &r["tokens"], &columns)
            }
            Self::Revoke { id, client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::DELETE, &format!("/api/v1/tokens/{}", segment(&id)))).await?;
                print_one(&client, &r, format!("revoked token {id}"))
            }
        }
    }
}

/// `edgefn project`.
#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a shared project you own.
    Create {
        /// Name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List your projects.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a project's members.
    Show {
        /// Name or id.
        project: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a member or change its role (`owner`, `developer`, `viewer`).
    Member {
        /// Name or id.
        project: String,
        /// User name or id.
        user: String,
        /// Role.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a member.
    RemoveMember {
        /// Name or id.
        project: String,
        /// User name or id.
        user: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl ProjectCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            Self::Create { name, client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::POST, "/api/v1/projects").json(&json!({"name": name}))).await?;
                print_one(&client, &r, format!("created project {name} ({})", r["id"].as_str().unwrap_or("?")))
            }
            Self::List { client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::GET, "/api/v1/projects")).await?;
                print_rows(&client, &r["projects"], &[("ID", "id"), ("NAME", "name"), ("CREATED", "createdAt")])
            }
            Self::Show { project, client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::GET, &format!("/api/v1/projects/{}", segment(&project)))).await?;
                print_rows(&client, &r["members"], &[("USER", "userName"), ("ROLE", "role"), ("SINCE", "createdAt")])
            }
            Self::Member { project, user, role, client } => {
                let client = Client::new(&client)?;
                let path = format!("/api/v1/projects/{}/members/{}", segment(&project), segment(&user));
                let r = client.send(client.request(Method::PUT, &path).json(&json!({"role": role}))).await?;
                print_one(&client, &r, format!("{user} is {role} of {project}"))
            }
            Self::RemoveMember { project, user, client } => {
                let client = Client::new(&client)?;
                let path = format!("/api/v1/projects/{}/members/{}", segment(&project), segment(&user));
                client.send(client.request(Method::DELETE, &path)).await?;
                println!("removed {user} from {project}");
                Ok(())
            }
        }
    }
}

/// `edgefn audit`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Show audit entries, oldest first (admins).
    List {
        /// Only this actor (user name or id).
        #[arg(long)]
        actor: Option<String>,
        /// Only this resource type (`module`, `version`, `route`, `user`, `token`, `project`, `member`).
        #[arg(long)]
        resource_type: Option<String>,
        /// Only entries after this sequence number.
        #[arg(long)]
        after: Option<i64>,
        /// Most entries.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check the hash chain; exits non-zero and names the first bad entry if any.
    Verify {
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl AuditCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            Self::List { actor, resource_type, after, limit, client } => {
                let client = Client::new(&client)?;
                let mut req = client.request(Method::GET, "/api/v1/audit").query(&[("limit", limit.to_string())]);
                for (key, value) in [("actor", actor), ("resourceType", resource_type), ("after", after.map(|a| a.to_string()))] {
                    if let Some(value) = value {
                        req = req.query(&[(key, value)]);
                    }
                }
                let r = client.send(req).await?;
                let columns = [
                    ("SEQ", "seq"),
                    ("TIME", "createdAt"),
                    ("ACTOR", "actorName"),
                    ("OPERATION", "operation"),
                    ("TYPE", "resourceType"),
                    ("RESOURCE", "resourceId"),
                ];
                print_rows(&client, &r["entries"], &columns)
            }
            Self::Verify { client } => {
                let client = Client::new(&client)?;
                let r = client.send(client.request(Method::GET, "/api/v1/audit/verify")).await?;
                if client.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                }
                if let Some(bad) = r.get("firstBad").filter(|b| !b.is_null()) {
                    bail!(
                        "audit log broken at entry {} ({}): {}",
                        bad["seq"],
                        bad["id"].as_str().unwrap_or("?"),
                        bad["reason"].as_str().unwrap_or("?")
                    );
                }
                if !client.json {
                    println!("audit log intact: {} entries, head {} {}", r["entries"], r["headSeq"], r["headHash"].as_str().unwrap_or("?"));
                }
                Ok(())
            }
        }
    }
}
