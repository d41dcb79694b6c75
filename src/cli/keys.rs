//! `stockroute hash-key`: API keys for `[[auth.keys]]`.
//!
//! The key is read from standard input rather than an argument, so that it
//! stays out of shell history and process listings.

use std::io::{BufRead, Write};

use anyhow::Context;

use crate::auth::{self, Roles};
use crate::limits;

/// Prints the digest of a key read from stdin, or a new key with its entry.
pub fn hash_key(generate: bool, id: &str, roles: &[String]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if generate {
        Roles::parse(roles).map_err(|e| anyhow::anyhow!("--role {e}"))?;
        limits::check_text(id, limits::CALLER_ID_BYTES_MAX)
            .map_err(|e| anyhow::anyhow!("--id {e}"))?;
        let key = auth::generate_key().map_err(|e| anyhow::anyhow!(e))?;
        let roles: Vec<String> = roles.iter().map(|r| format!("\"{}\"", r.trim())).collect();
        writeln!(
            out,
            "# Give this key to the client; it is shown only now and is not stored:\n\
             #   {key}\n\
             # Add this entry to the server's config ([[auth.keys]]) or keys file ([[keys]]):\n\
             [[auth.keys]]\n\
             id = \"{id}\"\n\
             roles = [{}]\n\
             sha256 = \"{}\"",
            roles.join(", "),
            auth::key_digest_hex(&key)
        )?;
        return Ok(());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the key from standard input")?;
    let key = line.trim();
    if key.is_empty() {
        anyhow::bail!("no key on standard input (e.g. `printf %s \"$KEY\" | stockroute hash-key`)");
    }
    if key.len() > limits::API_KEY_BYTES_MAX {
        anyhow::bail!("the key is longer than {} bytes", limits::API_KEY_BYTES_MAX);
    }
    writeln!(out, "{}", auth::key_digest_hex(key))?;
    Ok(())
}
