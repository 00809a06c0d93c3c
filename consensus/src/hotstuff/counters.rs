//! What a HotStuff replica counted: progress, and every input it dropped, by reason.

counters! {
    /// Blocks this replica proposed as leader.
    blocks_proposed,
    /// Votes this replica sent.
    votes_sent,
    /// QCs this replica formed as next leader.
    qcs_formed,
    /// TCs this replica formed.
    tcs_formed,
    /// Rounds this replica timed out in.
    round_timeouts,
    /// Blocks committed.
    blocks_committed,
    /// Blocks delivered to the application.
    batches_delivered,
    /// Requests delivered (after exactly-once filtering).
    requests_delivered,
    /// Requests filtered out at delivery because they were already delivered.
    duplicate_requests_filtered,
    /// Retransmitted requests answered from the reply cache.
    replies_from_cache,
    /// Requests answered with a stale-number notice: their number was delivered with
    /// another request (a new run of the client numbering from 1 again).
    stale_numbers,
    /// Marks queries answered (`Event::MarksQuery`: a client asking for its row of
    /// the exactly-once table before numbering a run).
    marks_answered,
    /// Marks queries dropped: the client was answered less than
    /// `MARKS_QUERY_INTERVAL` ago, or the desk was full (`MarksDesk`), or the client
    /// is outside the cluster.
    marks_refused,
    /// Retransmitted requests already delivered whose result is not held here.
    uncached_retransmissions,
    /// Blocks received through block sync.
    blocks_fetched,
    /// Stable checkpoints reached.
    checkpoints_stable,
    /// State transfers completed.
    state_transfers,
    /// Own proposals not sent: this replica could not vote for them (so no `Voted`
    /// record would tell a restart it proposed in the round).
    proposals_withheld,
    /// QCs inside fetched blocks that committed blocks but did not verify: not
    /// logged (a faulty peer forged their signatures).
    unverified_commit_qcs,
    /// Proposals held until their parent arrives.
    proposals_deferred,
    /// Client requests dropped: payload over the limit.
    dropped_oversize_request,
    /// Requests refused (direct or forwarded): this replica's MAC in the
    /// authenticator did not verify, or the authenticator was malformed.
    unauthenticated_requests,
    /// Requests refused: numbered more than the client window above the low mark.
    requests_too_far,
    /// Proposals this replica did not vote for because a request in them did not
    /// carry a valid MAC for it (the block can still be certified by the others).
    withheld_votes,
    /// Requests dropped: from a client id outside the cluster.
    dropped_unknown_client,
    /// Requests dropped: the queue was full.
    dropped_queue_full,
    /// Client requests refused as busy (the queue held `max_unexecuted` full batches
    /// of live requests): answered with a busy refusal, not queued.
    refused_busy,
    /// Of `refused_busy`: refused because the client already had its share of the
    /// queue queued (`per_client_bound`), with room left for other clients.
    refused_busy_client_share,
    /// Forwarded requests not queued: this replica's queue held its admission bound,
    /// or the client its share of a contended queue (as for direct requests). The
    /// forwarder still holds them and proposes them when it leads.
    dropped_forward_over_share,
    /// Proposals made without requests (or held) because `max_unexecuted` delivered
    /// blocks were not yet executed here (back-pressure from execution).
    proposals_throttled,
    /// Empty keep-alive blocks proposed by a throttled leader with nothing to order,
    /// so that replicas holding requests do not time its round out.
    keep_alive_blocks,
    /// Votes withheld from blocks carrying requests because this replica's execution
    /// lagged its deliveries by `2 × max_unexecuted` blocks (back-pressure on the
    /// voters' side, against a leader that ignores it).
    votes_withheld_execution_lag,
    /// Times a full queue was cleaned of delivered requests.
    queue_compactions,
    /// Messages dropped: a signature, QC or TC did not verify.
    dropped_bad_signature,
    /// Messages dropped: a block whose height or rounds do not follow its parent.
    dropped_bad_block,
    /// Messages dropped: a batch over the size limits or naming unknown clients.
    dropped_oversize_batch,
    /// Messages dropped: for a round already left.
    dropped_stale_round,
    /// Messages dropped: for a round too far ahead or not justified.
    dropped_future,
    /// Messages dropped: sent by a replica not entitled to send them.
    dropped_wrong_sender,
    /// Messages dropped: a second, different proposal or vote for one round.
    dropped_equivocation,
    /// Messages dropped: duplicates of something already known.
    dropped_duplicate,
    /// Messages dropped: malformed content.
    dropped_malformed,
    /// Blocks dropped: not asked for.
    dropped_unrequested,
    /// Blocks dropped: the cap on uncommitted blocks was reached.
    dropped_tree_full,
    /// Proposals not voted for: the safety rules refused.
    votes_refused,
    /// Messages dropped: an invalid checkpoint certificate or state snapshot.
    dropped_invalid_checkpoint,
    /// Executed reports from the application that did not fit (a driver bug).
    unexpected_executions,
    /// Our own checkpoint digest disagreed with a stable certificate.
    checkpoint_mismatches,
    /// Two different blocks committed at one height (must stay 0).
    conflicting_commits,
    /// State-transfer answers (headers, chunks) not sent: the peer's budget was spent.
    state_budget_exhausted,
}

crate::checkpoint::checkpoint_counters!();
