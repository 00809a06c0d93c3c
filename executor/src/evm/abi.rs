//! The ABI encodings the contracts' calls need: a function selector (the first
//! four bytes of keccak-256 of its signature) followed by static arguments, each
//! one 32-byte word (addresses left-padded, `uint256` big-endian, `bool` 0/1).
//! No dynamic types: none of our contracts' functions take one.

use revm::primitives::{Address, U256, keccak256};

/// The four-byte selector of a function signature such as `transfer(address,uint256)`.
pub fn selector(signature: &str) -> [u8; 4] {
    let hash = keccak256(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

/// A call's calldata under construction: `Abi::call("f(address,uint256)")
/// .address(a).uint(x).finish()`.
#[derive(Clone, Debug, Default)]
pub struct Abi {
    bytes: Vec<u8>,
}

impl Abi {
    /// Starts calldata with the selector of `signature`.
    pub fn call(signature: &str) -> Abi {
        Abi {
            bytes: selector(signature).to_vec(),
        }
    }

    /// Starts constructor arguments, appended to deploy bytecode (no selector).
    pub fn constructor(bytecode: &[u8]) -> Abi {
        Abi {
            bytes: bytecode.to_vec(),
        }
    }

    pub fn address(mut self, a: Address) -> Abi {
        self.bytes.extend_from_slice(&[0u8; 12]);
        self.bytes.extend_from_slice(a.as_slice());
        self
    }

    pub fn uint(mut self, x: U256) -> Abi {
        self.bytes.extend_from_slice(&x.to_be_bytes::<32>());
        self
    }

    pub fn u128(self, x: u128) -> Abi {
        self.uint(U256::from(x))
    }

    pub fn bool(self, b: bool) -> Abi {
        self.uint(U256::from(b as u8))
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }

    /// The first word of a call's output as a `uint256` (`None` if shorter).
    pub fn decode_uint(output: &[u8]) -> Option<U256> {
        let word: [u8; 32] = output.get(..32)?.try_into().ok()?;
        Some(U256::from_be_bytes(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_abi_selectors_match_the_erc20_standard() {
        assert_eq!(
            selector("transfer(address,uint256)"),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        assert_eq!(selector("balanceOf(address)"), [0x70, 0xa0, 0x82, 0x31]);
        let data = Abi::call("transfer(address,uint256)")
            .address(Address::with_last_byte(7))
            .u128(5)
            .finish();
        assert_eq!(data.len(), 4 + 64);
        assert_eq!(data[4 + 31], 7);
        assert_eq!(Abi::decode_uint(&data[36..]), Some(U256::from(5)));
    }
}
