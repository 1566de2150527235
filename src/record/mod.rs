//! The record model: what one logged exchange with a model holds, and its
//! encoding inside the sealed envelope.

mod ids;
mod message;
mod new_record;
mod stored;

pub use ids::{ConversationId, RecordId, SubjectId};
pub use message::{Message, Role};
pub use new_record::NewRecord;
pub use stored::Record;
