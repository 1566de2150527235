//! Where the key comes from: a passphrase file, the environment, or a
//! prompt without echo; a key file beside it; or recovery shares. Never a
//! command-line argument, which `ps` would show.

use std::path::{Path, PathBuf};

use llmvault::KeySource;
use llmvault::recovery::RecoveryShare;
use zeroize::Zeroizing;

use crate::fail::Fail;

/// The environment variable holding the passphrase.
pub const PASSPHRASE_ENV: &str = "LLMVAULT_PASSPHRASE";
/// The environment variable holding the new passphrase for `passwd`.
pub const NEW_PASSPHRASE_ENV: &str = "LLMVAULT_NEW_PASSPHRASE";

/// Where to look for one passphrase, in order: the file, the variable, a
/// prompt.
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: &'static str,
    pub key_file: Option<&'a PathBuf>,
    /// What the prompt asks for ("passphrase", "new passphrase").
    pub what: &'static str,
    /// Ask twice at the prompt (a new key).
    pub confirm: bool,
}

impl Sources<'_> {
    /// The key these sources give.
    pub fn key(&self) -> Result<KeySource, Fail> {
        let mut passphrase = self.passphrase()?;
        let passphrase = std::mem::take(&mut *passphrase);
        Ok(match self.key_file {
            Some(file) => {
                if !file.is_file() {
                    return Err(Fail::usage(format!(
                        "key file {} not found: check --key-file",
                        file.display()
                    )));
                }
                KeySource::passphrase_and_keyfile(passphrase, file)
            }
            None => KeySource::passphrase(passphrase),
        })
    }

    fn passphrase(&self) -> Result<Zeroizing<String>, Fail> {
        if let Some(path) = self.file {
            let mut text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Fail::usage(format!(
                    "cannot read passphrase file {}: {e}",
                    path.display()
                ))
            })?);
            let first_line = text.find(['\n', '\r']).unwrap_or(text.len());
            text.truncate(first_line);
            return non_empty(text, &format!("passphrase file {}", path.display()));
        }
        if let Some(value) = std::env::var_os(self.env) {
            let text = Zeroizing::new(
                value
                    .into_string()
                    .map_err(|_| Fail::usage(format!("{} is not valid UTF-8", self.env)))?,
            );
            return non_empty(text, self.env);
        }
        self.prompt()
    }

    fn prompt(&self) -> Result<Zeroizing<String>, Fail> {
        let no_terminal = |e: std::io::Error| {
            Fail::usage(format!(
                "no {} given and no terminal to ask on ({e}): use --passphrase-file or {}",
                self.what, self.env
            ))
        };
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("{}: ", capitalized(self.what)))
                .map_err(no_terminal)?,
        );
        let first = non_empty(first, "the passphrase")?;
        if self.confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password(format!("{} again: ", capitalized(self.what)))
                    .map_err(no_terminal)?,
            );
            if *again != *first {
                return Err(Fail::usage(
                    "the passphrases do not match; nothing was changed",
                ));
            }
        }
        Ok(first)
    }
}

/// Reads recovery shares, one per line (blank lines and `#` comments skipped).
pub fn shares(path: &Path) -> Result<Vec<RecoveryShare>, Fail> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Fail::usage(format!("cannot read shares file {}: {e}", path.display()))
        })?);
    let shares = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, line)| {
            RecoveryShare::from_text(line)
                .map_err(|e| Fail::from(e).context(format!("share {}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if shares.is_empty() {
        return Err(Fail::usage(format!(
            "no shares in {}: put one share per line",
            path.display()
        )));
    }
    Ok(shares)
}

fn non_empty(text: Zeroizing<String>, from: &str) -> Result<Zeroizing<String>, Fail> {
    if text.is_empty() {
        return Err(Fail::usage(format!("empty passphrase from {from}")));
    }
    Ok(text)
}

fn capitalized(what: &str) -> String {
    let mut chars = what.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
