//! The checkpoint codec on any bytes: decoding never panics, and whatever it accepts encodes
//! back to a checkpoint that decodes to the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_checkpoint::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(checkpoint) = codec::decode(data) {
        let again = codec::decode(&codec::encode(&checkpoint)).expect("a checkpoint it wrote reads back");
        assert_eq!(again, checkpoint);
    }
});
