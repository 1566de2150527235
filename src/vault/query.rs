//! Reading many records at once by filter, and retiring keys on demand.
//! Streaming them out is `export.rs`.

use std::time::SystemTime;

use super::Vault;
use crate::audit::{Actor, AuditAction, AuditOutcome, Event, QueryFilter};
use crate::codec::to_millis;
use crate::error::Result;
use crate::record::{ConversationId, Record, SubjectId};

/// Which records a [`Vault::query`] or [`Vault::export`] returns. Expired
/// records are never included.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use llmvault::Query;
///
/// let last_week = Query::all()
///     .since(SystemTime::now() - Duration::from_secs(7 * 86_400))
///     .tag("support")
///     .training_consented_only();
/// # drop(last_week);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Query {
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    tag: Option<String>,
    model: Option<String>,
    subject: Option<SubjectId>,
    conversation: Option<ConversationId>,
    consented_only: bool,
    keep_masked: bool,
}

impl Query {
    /// Every live record.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only records created at or after `t`.
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since = Some(t);
        self
    }

    /// Only records created before `t`.
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until = Some(t);
        self
    }

    /// Only records carrying this tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only records of this model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Only this subject's records (a data subject's access request).
    pub fn subject(mut self, subject: SubjectId) -> Self {
        self.subject = Some(subject);
        self
    }

    /// Only this conversation's records.
    pub fn conversation(mut self, conversation: ConversationId) -> Self {
        self.conversation = Some(conversation);
        self
    }

    /// Only records whose subject agreed to training use.
    pub fn training_consented_only(mut self) -> Self {
        self.consented_only = true;
        self
    }

    /// Leave masked records as the model saw them (placeholders), instead
    /// of putting the real values back: for exports that must not carry
    /// the personal data.
    pub fn keep_masked(mut self) -> Self {
        self.keep_masked = true;
        self
    }

    fn matches(&self, r: &Record) -> bool {
        self.since.is_none_or(|t| r.created_at() >= t)
            && self.until.is_none_or(|t| r.created_at() < t)
            && self.tag.as_ref().is_none_or(|t| r.tags().contains(t))
            && self.model.as_ref().is_none_or(|m| r.model() == m)
            && self.subject.as_ref().is_none_or(|s| r.subject() == Some(s))
            && self
                .conversation
                .as_ref()
                .is_none_or(|c| r.conversation() == c)
            && (!self.consented_only || r.training_consent())
    }
}

impl Vault {
    /// The live records matching `query`, oldest first (audited as one
    /// `Query` entry naming them).
    ///
    /// # Errors
    /// The first [`Error::Tampered`](crate::Error::Tampered) or
    /// [`Error::KeyDestroyed`](crate::Error::KeyDestroyed) met.
    pub fn query(&self, query: &Query) -> Result<Vec<Record>> {
        self.query_as(&self.actor, query)
    }

    pub(super) fn query_as(&self, actor: &Actor, query: &Query) -> Result<Vec<Record>> {
        self.adopt_ingested()?;
        let mut out = Vec::new();
        let mut event = Event::new(AuditAction::Query).query(self.filter_of(query));
        let result = self.scan(query, &mut event, true, &mut |r| {
            out.push(r);
            Ok(())
        });
        // Nothing leaves before the entry is written: the records are
        // returned only after it.
        let logged = self.log_alone(actor, event, &result);
        result?;
        logged?;
        out.sort_by_key(|r| (r.created_at(), r.id()));
        Ok(out)
    }

    /// Calls `each` for every live record matching `query`, in id order,
    /// counting them in `event` (and naming them there if `name_ids`).
    pub(super) fn scan(
        &self,
        query: &Query,
        event: &mut Event,
        name_ids: bool,
        each: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        let now_ms = self.now_ms();
        let conversation = query
            .conversation
            .as_ref()
            .map(|c| self.tags.conversation(c.as_str()));
        let subject = query
            .subject
            .as_ref()
            .map(|s| self.tags.subject(s.as_str()));
        let mut visit = |row: crate::store::RecordRow| {
            if row.expires_at_ms <= now_ms {
                return Ok(());
            }
            let mut record = self.open_row(row)?;
            if to_millis(record.expires_at()) > now_ms && query.matches(&record) {
                if !query.keep_masked {
                    self.unmask(std::slice::from_mut(&mut record))?;
                }
                if name_ids {
                    event.records.push(record.id());
                }
                event.count += 1;
                each(record)?;
            }
            Ok(())
        };
        let by_time = query.since.is_some() || query.until.is_some();
        if by_time && conversation.is_none() && subject.is_none() {
            // Only the blocks of ids the time index cannot rule out.
            return self.each_record_by_time(query.since, query.until, &mut visit);
        }
        self.store
            .each_record_of(conversation.as_ref(), subject.as_ref(), now_ms, &mut visit)
    }

    /// The filter as the audit entry records it: tags, never ids.
    pub(super) fn filter_of(&self, query: &Query) -> QueryFilter {
        QueryFilter {
            since_ms: query.since.map(to_millis),
            until_ms: query.until.map(to_millis),
            tag: query.tag.clone(),
            model: query.model.clone(),
            subject: query
                .subject
                .as_ref()
                .map(|s| self.tags.subject(s.as_str())),
            conversation: query
                .conversation
                .as_ref()
                .map(|c| self.tags.conversation(c.as_str())),
            consented_only: query.consented_only,
            keep_masked: query.keep_masked,
        }
    }

    /// Retires every data key in use: the next records get fresh keys. The
    /// retired keys still open what they sealed until their epoch ends.
    /// Returns how many keys were retired.
    ///
    /// # Errors
    /// [`Error::Busy`](crate::Error::Busy) or [`Error::Storage`](crate::Error::Storage).
    pub fn rotate_keys(&self) -> Result<usize> {
        let result = (|| {
            let mut txn = self.begin()?;
            let retired = txn.retire_all_keys()?;
            let event = Event::new(AuditAction::RotateKeys).count(retired as u64);
            self.log_in(&mut txn, &self.actor, &event, &AuditOutcome::Ok)?;
            self.commit(txn)?;
            Ok(retired)
        })();
        self.log_failed_write(&self.actor, AuditAction::RotateKeys, &result);
        result
    }
}
