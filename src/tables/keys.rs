//! Data keys: which one seals a scope, rotation, rewrapping.

use std::ops::ControlFlow;

use super::{Txn, wrong_row};
use crate::error::Result;
use crate::keys::{IdTag, KeyScope};
use crate::store::{Counter, KeyRow, ReadTxn, Row, Select, Table};

fn into_key(row: Row) -> Result<KeyRow> {
    match row {
        Row::Key(k) => Ok(k),
        other => Err(wrong_row(&other)),
    }
}

pub(super) fn key(r: &mut dyn ReadTxn, id: u64) -> Result<Option<KeyRow>> {
    r.get(Table::Keys, Select::Id(id))?
        .map(into_key)
        .transpose()
}

fn selected(r: &mut dyn ReadTxn, select: Select<'_>) -> Result<Vec<KeyRow>> {
    let mut out = Vec::new();
    r.scan(Table::Keys, select, &mut |row| {
        out.push(into_key(row?)?);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}

pub(super) fn all(r: &mut dyn ReadTxn) -> Result<Vec<KeyRow>> {
    selected(r, Select::All)
}

pub(super) fn scope_has_key(
    r: &mut dyn ReadTxn,
    subject: Option<&IdTag>,
    after_ms: i64,
    until_ms: i64,
) -> Result<bool> {
    // A row there at all, damaged or not: the question is whether the
    // scope still has a key, not whether it opens.
    let mut found = false;
    let ending = Select::EndingIn {
        subject,
        after_ms,
        until_ms,
    };
    r.scan(Table::Keys, ending, &mut |_| {
        found = true;
        Ok(ControlFlow::Break(()))
    })?;
    Ok(found)
}

impl Txn<'_> {
    /// The key sealing records of `scope`: the newest of the scope's keys
    /// not retired. Older ones of the scope still open what they sealed.
    pub(crate) fn active_key(&mut self, scope: &KeyScope) -> Result<Option<KeyRow>> {
        self.raw
            .get(Table::Keys, Select::Sealing(scope))?
            .map(into_key)
            .transpose()
    }

    /// Says that the active keys of these scopes are asked for next (see
    /// `WriteTxn::prefetch_sealing`).
    pub(crate) fn prefetch_active_keys(&mut self, scopes: &[KeyScope]) -> Result<()> {
        self.raw.prefetch_sealing(scopes)
    }

    /// Reserves a key id.
    pub(crate) fn allocate_key_id(&mut self) -> Result<u64> {
        self.raw.bump(Counter::KeyIds, 1, 0)
    }

    /// Stores a new key; never over one stored under its id (a key
    /// counter set back must not overwrite a key records need): the put
    /// of a taken id fails.
    pub(crate) fn insert_key(&mut self, key: KeyRow) -> Result<()> {
        self.raw.put(&Row::Key(key))
    }

    /// Writes a changed key row (retired, rewrapped) in place of the
    /// stored one: key rows are only ever added, so it goes and comes back.
    fn replace_key(&mut self, key: KeyRow) -> Result<()> {
        self.raw.delete(Table::Keys, Select::Id(key.id))?;
        self.raw.put(&Row::Key(key))
    }

    /// Counts `n` more records sealed by key `id`.
    pub(crate) fn add_key_use(&mut self, id: u64, n: u64) -> Result<()> {
        self.raw.bump(Counter::KeyUses(id), n, 0).map(|_| ())
    }

    /// Stops key `id` from sealing any more records.
    pub(crate) fn retire_key(&mut self, id: u64) -> Result<()> {
        if let Some(mut k) = key(self.r(), id)? {
            k.retired = true;
            self.replace_key(k)?;
        }
        Ok(())
    }

    /// Retires every active key; returns how many. A key row that does
    /// not decode is passed over: it cannot seal anyway (`active_key`
    /// fails on it), and must not stop a rotation.
    pub(crate) fn retire_all_keys(&mut self) -> Result<usize> {
        let mut active = Vec::new();
        self.raw.scan(Table::Keys, Select::All, &mut |row| {
            if let Ok(Row::Key(k)) = row
                && !k.retired
            {
                active.push(k);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        let retired = active.len();
        for mut k in active {
            k.retired = true;
            self.replace_key(k)?;
        }
        Ok(retired)
    }

    /// Replaces a key's wrapped bytes (after a change of KEK).
    pub(crate) fn rewrap_key(&mut self, id: u64, wrapped: &[u8]) -> Result<()> {
        if let Some(mut k) = key(self.r(), id)? {
            k.wrapped = wrapped.to_vec();
            self.replace_key(k)?;
        }
        Ok(())
    }

    /// Every stored key (for rewrapping).
    pub(crate) fn keys(&mut self) -> Result<Vec<KeyRow>> {
        all(self.r())
    }
}
