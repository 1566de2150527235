//! The command line, as clap sees it. Nothing here touches a vault.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keeps LLM prompt/response logs encrypted at rest.
///
/// Exit codes: 0 ok, 1 failure, 2 usage, 3 wrong key, 4 tampering found.
#[derive(Debug, Parser)]
#[command(
    name = "llmvault",
    version,
    about,
    long_about = None,
    args_override_self = true,
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 wrong key, 4 tampering found.\n\
                  The passphrase comes from --passphrase-file, LLMVAULT_PASSPHRASE or a prompt.\n\
                  Reference: docs/CLI.md"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes: where the vault is and what opens it.
#[derive(Debug, Args)]
pub struct Global {
    /// The vault file (with --keys: the record store), or a PostgreSQL
    /// database: a `postgres://` URL or a `host=… dbname=…` string.
    #[arg(long, global = true, env = "LLMVAULT_PATH", value_name = "PATH")]
    pub vault: Option<PathBuf>,

    /// The keys store of a vault whose keys are kept apart from its records
    /// (a file, or a PostgreSQL database as for --vault).
    #[arg(long, global = true, env = "LLMVAULT_KEYS", value_name = "PATH")]
    pub keys: Option<PathBuf>,

    /// PostgreSQL: the schema of the vault's tables (default llmvault);
    /// with --keys in PostgreSQL too, the keys' schema is this one
    /// followed by `_keys`.
    #[arg(long, global = true, env = "LLMVAULT_SCHEMA", value_name = "NAME")]
    pub schema: Option<String>,

    /// PostgreSQL: the CA certificate(s) the server's certificate must
    /// chain to (PEM); turns TLS on. Needed for any server not on this
    /// machine.
    #[arg(long, global = true, env = "LLMVAULT_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Read the passphrase from this file (its first line). Else the
    /// LLMVAULT_PASSPHRASE environment variable, else a prompt.
    #[arg(long, global = true, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,

    /// A key file: the vault needs the passphrase and this file's contents.
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Open the vault with recovery shares (one per line) instead of its key.
    #[arg(long, global = true, value_name = "FILE", conflicts_with_all = ["passphrase_file", "key_file"])]
    pub shares_file: Option<PathBuf>,

    /// Machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,

    /// Who acts, as written in the audit log.
    #[arg(long, global = true, env = "LLMVAULT_ACTOR", default_value = "cli")]
    pub actor: String,

    /// Why, as written in the audit log (a ticket, a request).
    #[arg(long, global = true, value_name = "TEXT")]
    pub purpose: Option<String>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault (asks for the passphrase twice).
    Init(Kdf),
    /// Store one record: JSON on stdin, or built from flags.
    Put(Box<Put>),
    /// Print the vault's ingest key, a secret: it lets `put
    /// --ingest-key-file` append without the passphrase, and read nothing.
    IngestKey {
        /// Replace it with a new one first: the old key stops working.
        #[arg(long)]
        rotate: bool,
    },
    /// Show one record.
    Get {
        /// The record's id.
        id: u64,
    },
    /// Show a conversation's live records, oldest first.
    Conversation {
        /// The conversation id.
        id: String,
    },
    /// Show a data subject's live records, oldest first.
    Subject {
        /// The subject id.
        id: String,
    },
    /// List live records, oldest first (one line each).
    List(Filters),
    /// Delete expired records and destroy their keys.
    Purge {
        /// Without the key: purge and note it for the audit log, nothing else.
        #[arg(long)]
        maintenance: bool,
    },
    /// Destroy a data subject's records and keys (right to erasure).
    Erase {
        /// The subject id.
        subject: String,
    },
    /// Write live records as JSON Lines (portable, in clear).
    Export(Export),
    /// Read JSON Lines from `export` into this vault (new ids).
    Import(Import),
    /// Authenticate every key, record and audit entry.
    Verify,
    /// The audit log.
    #[command(subcommand)]
    Audit(Audit),
    /// Change the vault's key (asks for the new passphrase twice).
    Passwd(Passwd),
    /// Retire every data key in use: new records get fresh keys.
    Rotate,
    /// Counts and sizes (needs no key).
    Stats,
    /// Break-glass recovery shares.
    #[command(subcommand)]
    Recovery(Recovery),
    /// Personal data: mask text before a model sees it, restore its reply.
    #[command(subcommand)]
    Pii(Pii),
}

/// Argon2id cost of a new key.
#[derive(Debug, Args)]
pub struct Kdf {
    /// Argon2id memory in KiB (8192 ..= 4194304).
    #[arg(long, value_name = "KIB", default_value_t = llmvault::KdfParams::DEFAULT_MEMORY_KIB)]
    pub kdf_memory_kib: u32,

    /// Argon2id passes (1 ..= 64).
    #[arg(long, value_name = "N", default_value_t = llmvault::KdfParams::DEFAULT_ITERATIONS)]
    pub kdf_iterations: u32,
}

/// `put`: with `--conversation`, the record comes from flags; else stdin.
#[derive(Debug, Args)]
pub struct Put {
    /// The conversation (else the record is read as JSON from stdin).
    #[arg(long)]
    pub conversation: Option<String>,
    /// The data subject.
    #[arg(long, requires = "conversation")]
    pub subject: Option<String>,
    /// The model's name.
    #[arg(long, requires = "conversation")]
    pub model: Option<String>,
    /// A system message, placed first.
    #[arg(long, requires = "conversation")]
    pub system: Option<String>,
    /// A user message (repeat for several, in order).
    #[arg(long = "prompt", requires = "conversation")]
    pub prompts: Vec<String>,
    /// The model's response.
    #[arg(long, requires = "conversation")]
    pub response: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag", requires = "conversation")]
    pub tags: Vec<String>,
    /// A metadata entry KEY=VALUE (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", requires = "conversation")]
    pub meta: Vec<String>,
    /// The subject agreed to training use.
    #[arg(long, requires = "conversation")]
    pub training_consent: bool,
    /// The prompt and response hold this conversation's placeholders
    /// (from `pii mask`); readers with the key see the real values.
    #[arg(long, requires = "conversation")]
    pub masked: bool,
    /// Append write-only with the ingest key in this file (from
    /// `ingest-key`; else from LLMVAULT_INGEST_KEY): no passphrase is
    /// asked for, and nothing can be read back with it.
    #[arg(long, value_name = "FILE")]
    pub ingest_key_file: Option<PathBuf>,
    /// How long to keep it (`90d`, `12h`); else the vault default (30 days).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
}

/// Which records `list` and `export` take.
#[derive(Debug, Args)]
pub struct Filters {
    /// Created at or after (RFC 3339 or unix seconds).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Created before (RFC 3339 or unix seconds).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Carrying this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Of this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Of this data subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// Of this conversation.
    #[arg(long)]
    pub conversation: Option<String>,
    /// Only records whose subject agreed to training use.
    #[arg(long)]
    pub training_consented_only: bool,
}

/// `export`.
#[derive(Debug, Args)]
pub struct Export {
    #[command(flatten)]
    pub filters: Filters,
    /// Write to this new file (mode 0600) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite `--output` if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Leave records stored masked as the model saw them (placeholders,
    /// `"masked": true`) instead of putting their real values back.
    #[arg(long)]
    pub masked: bool,
    /// Encrypt the export with age to this X25519 recipient (`age1…`);
    /// repeat for several. Any one of their identities decrypts it.
    #[arg(long, value_name = "RECIPIENT", value_parser = age_recipient)]
    pub age_recipient: Vec<age::x25519::Recipient>,
    /// Write the age file ASCII-armored (PEM-style text) instead of binary.
    #[arg(long, requires = "age_recipient")]
    pub armor: bool,
}

/// An age X25519 recipient (`age1…`), checked when the command line is read.
fn age_recipient(s: &str) -> Result<age::x25519::Recipient, String> {
    s.parse()
        .map_err(|e| format!("not an age X25519 recipient (age1…): {e}"))
}

/// `import`.
#[derive(Debug, Args)]
pub struct Import {
    /// The JSON Lines file (`-` or nothing: stdin).
    pub input: Option<PathBuf>,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum Audit {
    /// Print entries, oldest first.
    Show {
        /// First sequence number.
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// Last sequence number (included).
        #[arg(long, value_name = "SEQ")]
        to: Option<u64>,
    },
    /// Check the hash chain (and that it reaches a head kept elsewhere).
    Verify {
        /// A head printed earlier by `audit head`: a cut-off tail is found.
        #[arg(long, value_name = "SEQ:HEX")]
        head: Option<String>,
    },
    /// Print the newest entry's position and MAC, to keep outside the vault.
    Head,
}

/// `passwd`: the new key comes from a prompt, a file or the environment.
#[derive(Debug, Args)]
pub struct Passwd {
    /// Read the new passphrase from this file. Else LLMVAULT_NEW_PASSPHRASE,
    /// else a prompt (twice).
    #[arg(long, value_name = "PATH")]
    pub new_passphrase_file: Option<PathBuf>,
    /// The new key needs this key file too.
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub kdf: Kdf,
}

/// `recovery` subcommands.
#[derive(Debug, Subcommand)]
pub enum Recovery {
    /// Issue N shares, any K of which open the vault; earlier shares stop working.
    Split {
        /// Shares needed to open.
        k: u8,
        /// Shares issued.
        n: u8,
    },
    /// Make every issued share useless.
    Revoke,
}

/// `pii` subcommands. Text comes on stdin; the result goes to stdout.
#[derive(Debug, Subcommand)]
pub enum Pii {
    /// Replace personal data with placeholders (kept in the vault).
    Mask {
        /// The conversation whose placeholders to use and extend.
        conversation: String,
        /// Bind the placeholders to this data subject: erasing the subject
        /// destroys them.
        #[arg(long)]
        subject: Option<String>,
    },
    /// Put the real values back into a model's output.
    Restore {
        /// The conversation the placeholders were handed out in.
        conversation: String,
    },
    /// List the personal data found (kind and byte range); needs no vault.
    Scan,
}
