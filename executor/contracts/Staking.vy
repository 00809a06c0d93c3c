# pragma version ==0.4.3
# @license MIT OR Apache-2.0
"""
@title Staking
@notice Staking with a reward-per-share accumulator (the MasterChef /
        yield-farming pattern). `notify_reward(amount)` pulls reward tokens and
        raises reward_per_share by amount * PRECISION / total_staked, so every
        staker earns in proportion to its stake without a loop over stakers. A
        staker's pending reward is stake * reward_per_share / PRECISION minus
        its reward_debt (the accumulator's value already accounted for), plus
        what earlier settlements owe it. reward_per_share and total_staked are
        the global hot spot.
"""

interface ERC20:
    def transfer(receiver: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, receiver: address, amount: uint256) -> bool: nonpayable

event Claim:
    staker: indexed(address)
    amount: uint256

PRECISION: constant(uint256) = 10 ** 18

stake_token: public(address)
reward_token: public(address)
reward_per_share: public(uint256)
total_staked: public(uint256)
stake_of: public(HashMap[address, uint256])
reward_debt: public(HashMap[address, uint256])
owed: public(HashMap[address, uint256])


@deploy
def __init__(stake_token: address, reward_token: address):
    self.stake_token = stake_token
    self.reward_token = reward_token


@internal
def _settle(user: address, new_stake: uint256):
    acc: uint256 = self.reward_per_share
    old: uint256 = self.stake_of[user]
    self.owed[user] += old * acc // PRECISION - self.reward_debt[user]
    self.stake_of[user] = new_stake
    self.reward_debt[user] = new_stake * acc // PRECISION


@view
@external
def pending(user: address) -> uint256:
    return self.owed[user] + self.stake_of[user] * self.reward_per_share // PRECISION - self.reward_debt[user]


@external
def stake(amount: uint256):
    self._settle(msg.sender, self.stake_of[msg.sender] + amount)
    self.total_staked += amount
    assert extcall ERC20(self.stake_token).transferFrom(msg.sender, self, amount)


@external
def unstake(amount: uint256):
    self._settle(msg.sender, self.stake_of[msg.sender] - amount)
    self.total_staked -= amount
    assert extcall ERC20(self.stake_token).transfer(msg.sender, amount)


@external
def claim() -> uint256:
    self._settle(msg.sender, self.stake_of[msg.sender])
    amount: uint256 = self.owed[msg.sender]
    self.owed[msg.sender] = 0
    if amount > 0:
        assert extcall ERC20(self.reward_token).transfer(msg.sender, amount)
    log Claim(staker=msg.sender, amount=amount)
    return amount


@external
def notify_reward(amount: uint256):
    total: uint256 = self.total_staked
    assert total > 0, "nothing staked"
    assert extcall ERC20(self.reward_token).transferFrom(msg.sender, self, amount)
    self.reward_per_share += amount * PRECISION // total
