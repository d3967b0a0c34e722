//! The files of uploads refused for something other than the file (a taken version, a
//! bad name), kept for a few minutes so the corrected form can be sent again without
//! choosing the file again: browsers never refill a file field. Each is given back only
//! to the user who sent it; the whole stash is bounded in bytes, the oldest going first.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a refused upload's file is kept.
const KEEP_FOR: Duration = Duration::from_secs(10 * 60);
/// Most bytes kept for all users together.
const MAX_BYTES: usize = 32 * 1024 * 1024;

/// A kept file.
pub(crate) struct Kept {
    /// The file's name, as sent.
    pub(crate) file_name: String,
    /// Its contents.
    pub(crate) bytes: Vec<u8>,
}

struct Entry {
    id: String,
    user_id: String,
    at: Instant,
    kept: Kept,
}

/// Refused uploads' files, newest last.
#[derive(Default)]
pub struct UploadStash {
    entries: Mutex<VecDeque<Entry>>,
}

impl UploadStash {
    /// Keeps `kept` for `user_id`; returns the id to send it again with.
    pub(crate) fn keep(&self, user_id: &str, kept: Kept) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|e| e.at.elapsed() < KEEP_FOR);
        entries.push_back(Entry { id: id.clone(), user_id: user_id.to_string(), at: Instant::now(), kept });
        while entries.iter().map(|e| e.kept.bytes.len()).sum::<usize>() > MAX_BYTES && entries.len() > 1 {
            entries.pop_front();
        }
        id
    }

    /// The file kept as `id` for `user_id`, taken out of the stash.
    pub(crate) fn take(&self, id: &str, user_id: &str) -> Option<Kept> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let at = entries.iter().position(|e| e.id == id && e.user_id == user_id && e.at.elapsed() < KEEP_FOR)?;
        entries.remove(at).map(|e| e.kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_goes_back_to_its_sender_once() {
        let stash = UploadStash::default();
        let id = stash.keep("u1", Kept { file_name: "add.wasm".into(), bytes: vec![1, 2, 3] });
        assert!(stash.take(&id, "u2").is_none(), "another user never gets it");
        assert_eq!(stash.take(&id, "u1").map(|k| k.bytes), Some(vec![1, 2, 3]));
        assert!(stash.take(&id, "u1").is_none(), "taken once");
        let big = stash.keep("u1", Kept { file_name: "a".into(), bytes: vec![0; MAX_BYTES] });
        let newer = stash.keep("u1", Kept { file_name: "b".into(), bytes: vec![0; 10] });
        assert!(stash.take(&big, "u1").is_none(), "the oldest goes first past the bound");
        assert!(stash.take(&newer, "u1").is_some());
    }
}
