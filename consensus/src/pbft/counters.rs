//! What a PBFT replica counted: progress, and every input it dropped, by reason.

counters! {
    /// Batches this replica proposed as primary.
    batches_proposed,
    /// Sequence numbers committed locally.
    batches_committed,
    /// Sequence numbers delivered to the application.
    batches_delivered,
    /// Requests delivered (after exactly-once filtering).
    requests_delivered,
    /// Requests filtered out at delivery because they were already delivered.
    duplicate_requests_filtered,
    /// Requests left out at delivery, and refused at admission, because their number
    /// lay more than the client window above their client's low mark.
    requests_too_far,
    /// Client requests (direct or forwarded) refused: this replica's MAC in their
    /// authenticator did not verify.
    unauthenticated_requests,
    /// Pre-prepares (or new-view proposals) accepted without sending a prepare: a
    /// request in the batch did not carry a valid MAC for this replica. The slot still
    /// prepares from 2f prepares of others.
    withheld_prepares,
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
    /// Retransmitted requests already delivered whose result this replica does not
    /// hold (out of the client's window, or skipped by state transfer).
    uncached_retransmissions,
    /// Stable checkpoints reached.
    checkpoints_stable,
    /// View changes this replica started.
    view_changes_started,
    /// Normal-case view timers extended instead of starting a view change: the
    /// primary delivered batches since the timer was armed (slow, not dead).
    view_timer_extensions,
    /// New views this replica entered.
    new_views_entered,
    /// State transfers completed.
    state_transfers,
    /// Messages retransmitted in answer to a peer's status.
    retransmissions,
    /// Bytes sent in answer to peers' status and fetch messages.
    resent_bytes,
    /// Answers to a peer's status or fetch not sent: its resend budget was spent.
    resend_budget_exhausted,
    /// Client requests dropped: payload over the limit.
    dropped_oversize_request,
    /// Requests dropped: from a client id outside the cluster.
    dropped_unknown_client,
    /// Requests dropped because the primary's queue or a backup's wait list was full.
    dropped_queue_full,
    /// Client requests the primary refused as busy (its queue held `max_unexecuted`
    /// full batches): answered with a busy refusal, not queued.
    refused_busy,
    /// Of `refused_busy`: refused because the client already had its share of the
    /// queue queued (`per_client_bound`), with room left for other clients.
    refused_busy_client_share,
    /// Client requests a backup refused as busy because their client already had its
    /// share (`per_client_bound`) in this backup's wait list: neither awaited nor
    /// forwarded.
    refused_busy_awaited_share,
    /// Forwarded requests the primary dropped because the forwarding backup already
    /// had `per_client_bound` of that client's requests queued here (a correct
    /// backup never has: it awaits at most that many).
    dropped_forward_over_share,
    /// Times the primary held a batch back because `max_unexecuted` batches it
    /// delivered were not yet executed here (back-pressure from execution).
    proposals_throttled,
    /// Messages dropped: a signature did not verify.
    dropped_bad_signature,
    /// Messages dropped: a digest did not match its content.
    dropped_bad_digest,
    /// Messages dropped: a batch over the size limits, or naming unknown clients.
    dropped_oversize_batch,
    /// Messages dropped: from a view already left.
    dropped_stale_view,
    /// Messages dropped: too far ahead to buffer.
    dropped_future,
    /// Messages dropped: sequence number outside the watermark window.
    dropped_out_of_window,
    /// Messages dropped: sent by a replica not entitled to send them.
    dropped_wrong_sender,
    /// Messages dropped: conflicting with an earlier message from the same sender.
    dropped_equivocation,
    /// Messages dropped: malformed or inconsistent content.
    dropped_malformed,
    /// Messages dropped: duplicates of something already known.
    dropped_duplicate,
    /// Messages dropped: an invalid view change or new view.
    dropped_invalid_view_change,
    /// Messages dropped: an invalid checkpoint certificate or state snapshot.
    dropped_invalid_checkpoint,
    /// Executed reports from the application that did not fit (a driver bug).
    unexpected_executions,
    /// Our own checkpoint digest disagreed with a stable certificate (state diverged).
    checkpoint_mismatches,
    /// Two different digests committed at one sequence number (must stay 0).
    safety_conflicts,
}

crate::checkpoint::checkpoint_counters!();
