//! Raw SQL on a test vault's record store, SQLite or PostgreSQL, so a
//! tamper test changes real bytes with the same `UPDATE`s on both. The
//! statements are written with SQLite's `?N`; on PostgreSQL they run as
//! `$N` in the vault's schema.

use super::{Backend, TestVault, postgres_schema, postgres_server};

/// A connection that bypasses the vault.
pub enum Raw {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

/// A bound value.
#[derive(Debug, Clone)]
pub enum V {
    I(i64),
    B(Vec<u8>),
}

impl rusqlite::ToSql for V {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            V::I(n) => n.to_sql(),
            V::B(b) => b.to_sql(),
        }
    }
}

fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

fn pg_args(args: &[V]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    args.iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
            match v {
                V::I(n) => Box::new(*n),
                V::B(b) => Box::new(b.clone()),
            }
        })
        .collect()
}

impl Raw {
    /// Runs a statement that changes rows; how many it changed.
    pub fn execute(&mut self, sql: &str, args: &[V]) -> u64 {
        match self {
            Raw::Sqlite(c) => c.execute(sql, rusqlite::params_from_iter(args)).unwrap() as u64,
            Raw::Postgres(c) => {
                let owned = pg_args(args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                c.execute(dollars(sql).as_str(), &refs).unwrap()
            }
        }
    }

    /// Runs statements without parameters.
    pub fn batch(&mut self, sql: &str) {
        match self {
            Raw::Sqlite(c) => c.execute_batch(sql).unwrap(),
            Raw::Postgres(c) => c.batch_execute(sql).unwrap(),
        }
    }

    /// The first row's integer and bytes columns (`SELECT n, b …`).
    pub fn int_and_bytes(&mut self, sql: &str, args: &[V]) -> (i64, Vec<u8>) {
        match self {
            Raw::Sqlite(c) => c
                .query_row(sql, rusqlite::params_from_iter(args), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap(),
            Raw::Postgres(c) => {
                let owned = pg_args(args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                let row = c.query_one(dollars(sql).as_str(), &refs).unwrap();
                (row.get(0), row.get(1))
            }
        }
    }

    /// The first row's first column.
    pub fn one<T>(&mut self, sql: &str, args: &[V]) -> T
    where
        T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>,
    {
        match self {
            Raw::Sqlite(c) => c
                .query_row(sql, rusqlite::params_from_iter(args), |r| r.get(0))
                .unwrap(),
            Raw::Postgres(c) => {
                let owned = pg_args(args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                c.query_one(dollars(sql).as_str(), &refs).unwrap().get(0)
            }
        }
    }
}

impl TestVault {
    /// A raw connection to the record store (SQLite file or PostgreSQL
    /// schema), for tests that tamper.
    pub fn raw(&self) -> Raw {
        match self.backend {
            Backend::Postgres => {
                let (conninfo, _) = postgres_server().unwrap();
                let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
                client
                    .batch_execute(&format!(
                        "SET search_path TO \"{}\"",
                        postgres_schema(&self.path, "r")
                    ))
                    .unwrap();
                Raw::Postgres(client)
            }
            Backend::Sqlite => Raw::Sqlite(self.sql()),
            other => panic!("no raw SQL on {other:?}"),
        }
    }
}
