//! The node stream's wire protocol: messages and the gRPC service generated from
//! `proto/edgefn/node/v1/node.proto` (tonic + prost), and the conversions between its
//! messages and the typed values of `edgefn-model`.
//!
//! Decoding ignores fields it does not know (protobuf's rule), so a newer peer's messages
//! are still read; a resource whose enums or name this side cannot read is refused with a
//! [`Invalid`] naming why.

/// The generated messages and service.
#[allow(missing_docs, clippy::all, reason = "generated code")]
pub mod v1 {
    tonic::include_proto!("edgefn.node.v1");
}

mod convert;

pub use convert::{Invalid, resource_version};

/// Protocol version this build speaks.
pub const PROTOCOL: u32 = 1;
/// Largest artifact chunk sent.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Largest message either side of the node stream reads. A snapshot of everything a node
/// runs is one message (about 0.4 KB per function and per route: 10,000 functions make
/// 4 MB, gRPC's default limit), and so is a Hello naming all it holds.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// A node-stream client over `channel` that reads messages up to [`MAX_MESSAGE_BYTES`].
pub fn node_stream_client(channel: tonic::transport::Channel) -> v1::node_stream_client::NodeStreamClient<tonic::transport::Channel> {
    v1::node_stream_client::NodeStreamClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES)
}
