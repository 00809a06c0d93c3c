# pragma version ==0.4.3
# @license MIT OR Apache-2.0
"""
@title Pair
@notice A Uniswap-V2-style constant-product pair over two ERC-20 tokens, with
        the exact 0.3% fee of UniswapV2Library.getAmountOut:
        out = in * 997 * reserveOut / (reserveIn * 1000 + in * 997).
        Unlike V2 there is no separate router: `swap` pulls the input with
        transferFrom (the caller approved the pair) and pays the output, in one
        call. Reserves always equal the pair's token balances; after a swap the
        product of the reserves never decreases (asserted).
"""

interface ERC20:
    def transfer(receiver: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, receiver: address, amount: uint256) -> bool: nonpayable

event Swap:
    sender: indexed(address)
    zero_for_one: bool
    amount_in: uint256
    amount_out: uint256

event Mint:
    sender: indexed(address)
    amount0: uint256
    amount1: uint256
    shares: uint256

MINIMUM_LIQUIDITY: constant(uint256) = 1000

token0: public(address)
token1: public(address)
reserve0: public(uint256)
reserve1: public(uint256)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])


@deploy
def __init__(token0: address, token1: address):
    self.token0 = token0
    self.token1 = token1


@pure
@external
def getAmountOut(amount_in: uint256, reserve_in: uint256, reserve_out: uint256) -> uint256:
    return self._amount_out(amount_in, reserve_in, reserve_out)


@pure
@internal
def _amount_out(amount_in: uint256, reserve_in: uint256, reserve_out: uint256) -> uint256:
    assert amount_in > 0, "insufficient input"
    assert reserve_in > 0 and reserve_out > 0, "insufficient liquidity"
    with_fee: uint256 = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


@external
def swap(zero_for_one: bool, amount_in: uint256, min_out: uint256) -> uint256:
    r0: uint256 = self.reserve0
    r1: uint256 = self.reserve1
    amount_out: uint256 = 0
    if zero_for_one:
        amount_out = self._amount_out(amount_in, r0, r1)
        assert amount_out >= min_out, "slippage"
        assert extcall ERC20(self.token0).transferFrom(msg.sender, self, amount_in)
        assert extcall ERC20(self.token1).transfer(msg.sender, amount_out)
        self.reserve0 = r0 + amount_in
        self.reserve1 = r1 - amount_out
    else:
        amount_out = self._amount_out(amount_in, r1, r0)
        assert amount_out >= min_out, "slippage"
        assert extcall ERC20(self.token1).transferFrom(msg.sender, self, amount_in)
        assert extcall ERC20(self.token0).transfer(msg.sender, amount_out)
        self.reserve1 = r1 + amount_in
        self.reserve0 = r0 - amount_out
    assert self.reserve0 * self.reserve1 >= r0 * r1, "k"
    log Swap(sender=msg.sender, zero_for_one=zero_for_one, amount_in=amount_in, amount_out=amount_out)
    return amount_out


@external
def add_liquidity(amount0: uint256, amount1: uint256) -> uint256:
    r0: uint256 = self.reserve0
    r1: uint256 = self.reserve1
    supply: uint256 = self.totalSupply
    shares: uint256 = 0
    if supply == 0:
        shares = isqrt(amount0 * amount1) - MINIMUM_LIQUIDITY
        # The first MINIMUM_LIQUIDITY shares are locked forever, as in V2.
        self.balanceOf[empty(address)] = MINIMUM_LIQUIDITY
        supply = MINIMUM_LIQUIDITY
    else:
        shares = min(amount0 * supply // r0, amount1 * supply // r1)
    assert shares > 0, "insufficient liquidity minted"
    assert extcall ERC20(self.token0).transferFrom(msg.sender, self, amount0)
    assert extcall ERC20(self.token1).transferFrom(msg.sender, self, amount1)
    self.reserve0 = r0 + amount0
    self.reserve1 = r1 + amount1
    self.totalSupply = supply + shares
    self.balanceOf[msg.sender] += shares
    log Mint(sender=msg.sender, amount0=amount0, amount1=amount1, shares=shares)
    return shares
