//! RESP2/RESP3 on the wire: request framing ([`codec`]), argument parsing ([`args`]) and
//! replies ([`reply`]). Owns bytes ↔ values only; it knows nothing of commands' meaning.

pub mod args;
pub mod codec;
pub mod reply;

pub use args::Args;
pub use codec::{Argv, Decoder, Frame, FrameLimits, ProtocolError};
pub use reply::{Proto, Reply};
