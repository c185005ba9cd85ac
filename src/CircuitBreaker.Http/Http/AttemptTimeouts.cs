using Microsoft.Extensions.ObjectPool;

namespace CircuitBreaker.Http;

/// <summary>
/// The pool behind every call's <see cref="CircuitBreakerOptions.AttemptTimeout"/>, so that a call through a closed
/// circuit allocates no timer and no token source of its own.
/// </summary>
/// <remarks>
/// Arming a timer for each call and disarming it afterwards takes the runtime's timer-queue lock twice per call.
/// Instead each pooled <see cref="Slot"/> keeps one timer that is re-armed lazily: a call only writes its deadline,
/// and the timer, when it fires, cancels the call if its deadline has passed and otherwise sleeps until the deadline
/// of whichever call holds the slot then. A slot's timer therefore fires about once per timeout while the slot is in
/// use, and never earlier than the deadline of the call it cancels. Deadlines are read from the injected
/// <see cref="TimeProvider"/> through its <see cref="CoarseClock"/>.
/// <para>
/// The handler links the caller's token to a slot's (<see cref="Slot.LinkCaller"/>) only once the call below has gone
/// asynchronous, as sockets and semaphores register for cancellation only when they must wait. The caller's token is
/// <c>HttpClient</c>'s own source, new for every request, so the first registration on it allocates: a call answered
/// synchronously allocates nothing here, and one that goes asynchronous registers on that source once, where a
/// socket below would otherwise have registered.
/// </para>
/// </remarks>
internal sealed class AttemptTimeouts
{
    // One slot per thread in front of the shared pool: most calls end on the thread that started them (all that
    // complete synchronously), and this takes no interlocked operation. It may hold another registry's slot (two hosts
    // in one process, or tests, build several), which then goes back to its own pool rather than staying here, so that
    // it does not keep a disposed registry's pool alive.
    [ThreadStatic]
    private static Slot? t_cached;

    private readonly ObjectPool<Slot> _pool;
    private readonly CoarseClock _clock;

    public AttemptTimeouts(TimeProvider timeProvider)
    {
        _clock = CoarseClock.For(timeProvider);
        _pool = new DefaultObjectPool<Slot>(new Policy(this), maximumRetained: 256);
    }

    /// <summary>A slot whose token fires at <paramref name="timeout"/> from now, and on the caller's cancellation once <see cref="Slot.LinkCaller"/> has linked it.</summary>
    public Slot Start(TimeSpan timeout)
    {
        // Through a ref: each access to a thread-static is a TLS lookup (a call into the loader on Linux), and the
        // ref makes one serve the read and the write.
        ref var cached = ref t_cached;
        var slot = cached;
        cached = null;
        if (slot is null || !ReferenceEquals(slot.Owner, this))
        {
            // Dropped, the other registry's slot would be lost to it: with calls of two registries taking turns on the
            // threads, each call would then build a new slot, its timer and its token source.
            slot?.Owner._pool.Return(slot);
            slot = _pool.Get();
        }

        slot.Start(timeout);
        return slot;
    }

    private void Return(Slot slot)
    {
        ref var cached = ref t_cached;
        if (cached is null)
        {
            cached = slot;
        }
        else
        {
            _pool.Return(slot);
        }
    }

    /// <summary>One pooled timeout: a token source, its timer, and the deadline of the call that holds it.</summary>
#pragma warning disable CA1001 // Pooled for the registry's lifetime. A slot the pool drops is left to the collector: its
    // timer fires at most once more and finds it idle, and its source never hands out a wait handle, the one thing to dispose.
    internal sealed class Slot
#pragma warning restore CA1001
    {
        // _state: the rental number shifted left by 2, and one of these in the low bits.
        private const long Idle = 0;
        private const long Running = 1;
        private const long Fired = 2;
        private const long StateMask = 3;

        private readonly AttemptTimeouts _owner;
        private readonly Lock _timerLock = new();
        private readonly ITimer _timer;
        private CancellationTokenSource _source = new();
        private CancellationTokenRegistration _callerRegistration;
        private long _state;
        private long _deadline;
        private long _armedFor = long.MaxValue; // the deadline the timer is armed for; MaxValue while it is not
        private long _timeoutUnits; // Timeout in the clock's units

        public Slot(AttemptTimeouts owner)
        {
            _owner = owner;

            // Without the flow suppressed, the timer would keep the first caller's execution context (its activity,
            // its logging scopes) alive, and run every callback in it.
            using (ExecutionContext.IsFlowSuppressed() ? default(AsyncFlowControl?) : ExecutionContext.SuppressFlow())
            {
                _timer = owner._clock.TimeProvider.CreateTimer(static s => ((Slot)s!).OnTimer(), this, System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);
            }
        }

        public AttemptTimeouts Owner => _owner;

        public CancellationToken Token => _source.Token;

        public TimeSpan Timeout { get; private set; }

        /// <summary>Whether the timeout, and not the caller, cancelled the call.</summary>
        public bool TimedOut => (Volatile.Read(ref _state) & StateMask) == Fired;

        public void Start(TimeSpan timeout)
        {
            if (timeout != Timeout)
            {
                // Converted once per slot and timeout rather than per call: a slot mostly serves one client's calls.
                Timeout = timeout;
                _timeoutUnits = _owner._clock.ToUnits(timeout);
            }

            var now = _owner._clock.Now;
            var deadline = now + _timeoutUnits;
            _deadline = deadline;

            // A full fence, then the read of _armedFor: either this call sees that the timer went idle and arms it,
            // or the timer's callback (which clears _armedFor, then reads _state) sees this call running.
            Interlocked.Exchange(ref _state, (((_state >> 2) + 1) << 2) | Running);
            if (Volatile.Read(ref _armedFor) > deadline)
            {
                Arm(deadline, now);
            }
        }

        /// <summary>
        /// From now on, <paramref name="callerToken"/> firing cancels <see cref="Token"/>; at once when it has fired
        /// already. At most once per call.
        /// </summary>
        public void LinkCaller(CancellationToken callerToken) =>
            _callerRegistration = callerToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _source);

        /// <summary>Ends the call and puts the slot back in the pool.</summary>
        public void End()
        {
            // The registration goes first: disposing it waits for a running callback, which then cannot touch a reused source.
            _callerRegistration.Dispose();
            _callerRegistration = default;
            var ended = Interlocked.Exchange(ref _state, Volatile.Read(ref _state) & ~StateMask);
            if ((ended & StateMask) == Fired || !_source.TryReset())
            {
                // Cancelled by the timeout or by the caller: a source cannot be used again once cancelled. The old
                // one is left to the collector rather than disposed, as the timer's thread may still be cancelling it.
                _source = new CancellationTokenSource();
            }

            _owner.Return(this);
        }

        private void Arm(long deadline, long now)
        {
            lock (_timerLock)
            {
                if (_armedFor > deadline)
                {
                    _armedFor = deadline;
                    _timer.Change(_owner._clock.ToTimeSpan(Math.Max(0, deadline - now)), System.Threading.Timeout.InfiniteTimeSpan);
                }
            }
        }

        private void OnTimer()
        {
            CancellationTokenSource source;
            lock (_timerLock)
            {
                Interlocked.Exchange(ref _armedFor, long.MaxValue);
                while (true)
                {
                    var state = Volatile.Read(ref _state);
                    if ((state & StateMask) != Running)
                    {
                        return; // idle: the next call arms the timer again
                    }

                    var deadline = Volatile.Read(ref _deadline);
                    var now = _owner._clock.Now;
                    if (now < deadline)
                    {
                        // Armed for an earlier call that has ended: sleep until the deadline of the one running now.
                        _armedFor = deadline;
                        _timer.Change(_owner._clock.ToTimeSpan(deadline - now), System.Threading.Timeout.InfiniteTimeSpan);
                        return;
                    }

                    // Read before the state changes: once it says Fired, End may replace the source.
                    source = _source;
                    if (Interlocked.CompareExchange(ref _state, (state & ~StateMask) | Fired, state) == state)
                    {
                        break;
                    }

                    // The call ended (and another may have started) meanwhile: look again.
                }
            }

            // Outside the lock: cancelling runs the callbacks the handlers below registered.
            source.Cancel();
        }
    }

    private sealed class Policy(AttemptTimeouts owner) : IPooledObjectPolicy<Slot>
    {
        public Slot Create() => new(owner);

        public bool Return(Slot obj) => true;
    }
}
