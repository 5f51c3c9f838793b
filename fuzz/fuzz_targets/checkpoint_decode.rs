//! The checkpoint codec on any bytes: decoding never panics, and whatever it accepts encodes
//! back to a checkpoint that decodes to the same. Each input is tried as it is and with a
//! valid checksum appended, so that mutations reach the metadata and state columns behind the
//! checksum check.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_checkpoint::codec;

fn check(bytes: &[u8]) {
    if let Ok(checkpoint) = codec::decode(bytes) {
        let again = codec::decode(&codec::encode(&checkpoint)).expect("a checkpoint it wrote reads back");
        assert_eq!(again, checkpoint);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut summed = data.to_vec();
    summed.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(data).to_le_bytes());
    check(&summed);
});
