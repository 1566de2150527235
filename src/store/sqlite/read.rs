//! Reads outside a write transaction. A lookup of one row runs on the
//! writer's connection when it is idle (its page cache is the warm one);
//! a scan or a count runs on a pooled reader, never holding writers up.

use std::ops::ControlFlow;

use super::{SqliteBackend, rows};
use crate::error::Result;
use crate::store::{ReadTxn, Row, Scanned, Select, Table, Tally};

pub(super) struct SqliteRead<'a> {
    pub(super) backend: &'a SqliteBackend,
}

impl ReadTxn for SqliteRead<'_> {
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>> {
        let (query, order) = (rows::select(table, &key)?, rows::order_of(table, &key));
        self.backend.short(|c| rows::first(c, table, query, order))
    }

    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let (query, order) = (
            rows::select(table, &select)?,
            rows::order_of(table, &select),
        );
        self.backend
            .pooled(|c| rows::scan(c, table, query, order, each))
    }

    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally> {
        let query = rows::tally(table, &select)?;
        self.backend.pooled(|c| rows::count(c, query))
    }
}
