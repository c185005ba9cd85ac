namespace CircuitBreaker.Http;

/// <summary>
/// The state machine of one circuit. It knows nothing about HTTP: callers ask for a permit, then report
/// the outcome. The closed path is lock-free (a volatile read to admit, no write on success while nothing
/// has failed); every transition happens under the lock, and listeners are told after it is released.
/// </summary>
internal class CircuitStateMachine : IDisposable
{
    // Transitions lock the machine itself (Monitor, in its object header) rather than a Lock of its own: it is
    // internal and never handed out, so nothing else locks it, and with many hosts a Lock and the reference to it
    // were 48 bytes of every circuit the registry keeps. Only transitions take it; the closed path never does.
    private readonly CoarseClock _clock;

    /// <summary>The longest a fleet's hold of a probe lasts after the break (see <see cref="OpenForFleet"/>).</summary>
    internal static readonly TimeSpan LongestProbeWait = TimeSpan.FromDays(365);

    // The fields every call reads: what is left once everything a healthy circuit never touches is in Cold.
    private BreakerSettings _settings;
    private RollingWindow? _window;
    private Cold? _cold;
    private long _epoch;
    // When the break ends, on the coarse clock (rounded up), which a reader without the lock can read whole. Every decision
    // about the break reads it, never the wall clock: a step of the wall clock (NTP, an operator, a VM resumed) would
    // otherwise hold a circuit open for as long as the clock went back, or end its break early.
    private long _retryAtCoarse;
    private volatile CircuitState _state = CircuitState.Closed;
    private int _consecutiveFailures;

    /// <param name="settings">The breaker's settings.</param>
    /// <param name="timeProvider">Its clock.</param>
    /// <param name="onTransition">Told of every state change, after the lock is released; a derived class may override <see cref="OnTransition"/> instead.</param>
    public CircuitStateMachine(BreakerSettings settings, TimeProvider timeProvider, Action<CircuitTransition>? onTransition = null)
    {
        _settings = settings;
        _clock = CoarseClock.For(timeProvider);
        if (onTransition is not null)
        {
            _cold = new Cold { OnTransition = onTransition };
        }

        if (settings.SamplesRatio)
        {
            _window = new RollingWindow(settings.SamplingDuration, timeProvider.TimestampFrequency);
        }
    }

    /// <summary>
    /// The state as callers should see it: an open circuit whose break has elapsed is reported as half-open
    /// (a probe is due) even before a call or the break timer has moved it there.
    /// </summary>
    public CircuitState State
    {
        get
        {
            var state = _state;
            if (state == CircuitState.Open)
            {
                lock (this)
                {
                    if (_state == CircuitState.Open && BreakOverLocked(_clock.Now))
                    {
                        return CircuitState.HalfOpen;
                    }

                    return _state;
                }
            }

            return state;
        }
    }

    public BreakerSettings Settings => Volatile.Read(ref _settings);

    private TimeProvider TimeProvider => _clock.TimeProvider;

    /// <summary>The cold state, created on first use; only under the lock.</summary>
    private Cold ColdLocked => _cold ??= new Cold();

    /// <summary>
    /// How long ago the circuit closed after a successful probe (its own or the fleet's), for the slow start; <see langword="null"/>
    /// otherwise. Measured on the monotonic clock: a step of the wall clock must neither end the slow start at once nor keep it
    /// at its first tenth for as long as the clock went back.
    /// </summary>
    public TimeSpan? SinceRecovery
    {
        get
        {
            lock (this)
            {
                return _state == CircuitState.Closed && _cold?.RecoveredAt is { } at ? _clock.ToTimeSpan(_clock.Now - at) : null;
            }
        }
    }

    /// <summary>The probes let through and not yet reported, which the reliability tests compare with their model.</summary>
    internal int ProbesInFlight
    {
        get
        {
            lock (this)
            {
                return _cold?.ProbesInFlight ?? 0;
            }
        }
    }

    public CircuitPermit TryAcquire()
    {
        if (_state == CircuitState.Closed)
        {
            // The epoch is read after the state: if a transition slipped in between, the permit carries the
            // new epoch with a closed kind, and its outcome is ignored because the state is no longer closed.
            return CircuitPermit.Closed(Volatile.Read(ref _epoch));
        }

        return TryRejectDuringBreak(out var rejected) ? rejected : TryAcquireSlow();
    }

    public void OnSuccess(in CircuitPermit permit)
    {
        if (permit.Kind == CircuitPermitKind.Closed && _window is null && Volatile.Read(ref _consecutiveFailures) == 0)
        {
            return; // the healthy hot path: nothing to record
        }

        CircuitTransition? transition = null;
        lock (this)
        {
            if (!IsCurrent(permit))
            {
                return;
            }

            if (permit.Kind == CircuitPermitKind.Closed)
            {
                _consecutiveFailures = 0;
                _window?.Record(TimeProvider.GetTimestamp(), failed: false);
            }
            else
            {
                var cold = ColdLocked;
                cold.ProbesInFlight--;
                if (++cold.ProbeSuccesses >= _settings.HalfOpenProbes)
                {
                    transition = PendLocked(CloseLocked());
                }
            }
        }

        Notify(transition);
    }

    /// <param name="permit">The permit the call was let in with.</param>
    /// <param name="failure">What kind of failure it was (for logs and health), such as <c>503</c> or <c>timeout</c>.</param>
    /// <param name="requestedBreak">
    /// How long the downstream asked to be left alone, if it did (a server's <c>Retry-After</c>): should this
    /// failure open the circuit, it opens for that long, bounded by <c>MaxBreakDuration</c> (or a longer <c>BreakDuration</c>).
    /// </param>
    public void OnFailure(in CircuitPermit permit, string? failure = null, TimeSpan? requestedBreak = null)
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            if (!IsCurrent(permit))
            {
                return;
            }

            var cold = ColdLocked;
            cold.LastFailure = failure;
            if (permit.Kind == CircuitPermitKind.Closed)
            {
                _consecutiveFailures++;
                var settings = _settings;
                var tripped = settings.FailureThreshold > 0 && _consecutiveFailures >= settings.FailureThreshold;
                if (_window is not null)
                {
                    var timestamp = TimeProvider.GetTimestamp();
                    _window.Record(timestamp, failed: true);
                    var (total, failures) = _window.Read(timestamp);
                    tripped |= total >= settings.MinimumThroughput && failures >= settings.FailureRatio * total;
                }

                if (tripped)
                {
                    transition = PendLocked(OpenLocked(fromHalfOpen: false, requestedBreak));
                }
            }
            else
            {
                cold.FailedProbes++;
                transition = PendLocked(OpenLocked(fromHalfOpen: true, requestedBreak));
            }
        }

        Notify(transition);
    }

    /// <summary>
    /// Whether the circuit has moved on since it granted <paramref name="permit"/> (it opened, closed, was isolated or
    /// reset), so that the call's outcome would be ignored. Read without the lock, for a call that waited before going.
    /// </summary>
    public bool IsOutdated(in CircuitPermit permit) =>
        permit.IsGranted
        && (permit.Epoch != Volatile.Read(ref _epoch)
            || _state != (permit.Kind == CircuitPermitKind.Probe ? CircuitState.HalfOpen : CircuitState.Closed));

    /// <summary>Gives a permit back without an outcome, for a call the caller cancelled.</summary>
    public void Release(in CircuitPermit permit)
    {
        if (permit.Kind != CircuitPermitKind.Probe)
        {
            return;
        }

        lock (this)
        {
            if (IsCurrent(permit))
            {
                ColdLocked.ProbesInFlight--;
            }
        }
    }

    public void Isolate()
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            if (_state != CircuitState.Isolated)
            {
                var previous = EffectiveStateLocked();
                var cold = ColdLocked;
                cold.BreakTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _epoch++;
                _state = CircuitState.Isolated;
                var now = TimeProvider.GetUtcNow();
                cold.OpenedAt = now;
                if (previous == CircuitState.Closed)
                {
                    cold.LeftClosedAt = _clock.Now;
                }

                cold.ProbesInFlight = 0;
                cold.FleetHeld = false;
                transition = PendLocked(new CircuitTransition(previous, CircuitState.Isolated, now, null, Source: CircuitChangeSource.Operator));
            }
        }

        Notify(transition);
    }

    /// <summary>Closes the circuit by hand, forgetting its failures, its break growth and any slow start under way.</summary>
    public void Reset()
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            if (_state != CircuitState.Closed)
            {
                var previous = EffectiveStateLocked();
                transition = PendLocked(CloseLocked() with { PreviousState = previous, Source = CircuitChangeSource.Operator });
            }
            else
            {
                _consecutiveFailures = 0;
                _window?.Clear();
            }

            // A reset is a fresh start, the state a first start has: no break growth, and no slow start, which no probe
            // earned here, whether the circuit was open, half-open or closed and still ramping up.
            if (_cold is { } cold)
            {
                cold.LastBreak = TimeSpan.Zero;
                cold.RecoveredAt = null;
            }
        }

        Notify(transition);
    }

    /// <summary>
    /// Opens the circuit because the fleet decided so (or keeps it open, taking the later retry time), and holds
    /// its half-open probe for the fleet's prober: after the break this instance turns calls away until the fleet
    /// grants it the probe (<see cref="GrantFleetProbe"/>), closes it (<see cref="CloseForFleet"/>), or
    /// <paramref name="probeWait"/> has passed, when it probes by itself. The break is bounded by the longest this
    /// circuit's own settings allow, the wait by <see cref="LongestProbeWait"/>, and both are at least zero.
    /// </summary>
    public void OpenForFleet(TimeSpan breakDuration, TimeSpan probeWait)
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            var cold = ColdLocked;
            if (_state == CircuitState.Isolated || cold.Disposed)
            {
                return; // an operator's order outranks the fleet's
            }

            // The fleet's break arrives on a channel that another build, another app or any client of that Redis can
            // publish on. Bounded as a Retry-After is: a year would hold the circuit open for a year, and a timer takes no
            // more than 49.7 days (nor a negative time), which it would refuse only once the circuit had opened, untold.
            var longest = _settings.LongestBreak;
            breakDuration = breakDuration < TimeSpan.Zero ? TimeSpan.Zero : breakDuration > longest ? longest : breakDuration;
            var now = TimeProvider.GetUtcNow();
            if (_state == CircuitState.Open)
            {
                // Often opened by the very failures that made the quorum: no new transition, just the fleet's timing.
                if (_clock.Now + _clock.ToUnits(breakDuration) > _retryAtCoarse)
                {
                    SetRetryAtLocked(breakDuration);
                    ScheduleBreakTimerLocked(breakDuration);
                }
            }
            else
            {
                transition = PendLocked(EnterOpenLocked(now, breakDuration, breakDuration, CircuitChangeSource.Fleet));
            }

            // Bounded too: TimeSpan.MaxValue, a natural "for ever", would overflow the coarse clock's units (the hold then
            // over before it began) or the Retry-After computed from them. A year is for ever to a hold.
            probeWait = probeWait < TimeSpan.Zero ? TimeSpan.Zero : probeWait > LongestProbeWait ? LongestProbeWait : probeWait;
            cold.FleetHeld = true;
            cold.FleetHeldUntil = _retryAtCoarse + _clock.ToUnits(probeWait);
        }

        Notify(transition);
    }

    /// <summary>Lets this instance send the fleet's probe of a circuit held by <see cref="OpenForFleet"/>.</summary>
    /// <returns><see langword="true"/> if the circuit was held.</returns>
    public bool GrantFleetProbe()
    {
        lock (this)
        {
            if (_cold is not { FleetHeld: true } cold)
            {
                return false;
            }

            cold.FleetHeld = false;
            return true;
        }
    }

    /// <summary>Closes a circuit held by <see cref="OpenForFleet"/> because the fleet's probe succeeded elsewhere.</summary>
    /// <returns><see langword="true"/> if the circuit was held and is now closed.</returns>
    public bool CloseForFleet()
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            // A circuit this instance opened on its own, outside a fleet decision, keeps probing for itself: its
            // own path to the downstream may be the broken one.
            if (_cold is not { FleetHeld: true } || _state is CircuitState.Closed or CircuitState.Isolated)
            {
                return false;
            }

            var previous = EffectiveStateLocked();
            var closed = CloseLocked() with { PreviousState = previous, Source = CircuitChangeSource.Fleet };

            // The fleet's probe proved the downstream back, as a probe of this instance's own would have. A circuit
            // closed straight from Open (its own break was longer than the fleet's) would otherwise send its whole
            // backlog at once while the rest of the fleet ramps up.
            ColdLocked.RecoveredAt = _clock.Now;
            transition = PendLocked(closed);
        }

        Notify(transition);
        return true;
    }

    /// <summary>Forgets a fleet hold: the circuit probes by itself again after its break.</summary>
    public void ReleaseFleetHold()
    {
        lock (this)
        {
            if (_cold is { } cold)
            {
                cold.FleetHeld = false;
            }
        }
    }

    /// <summary>Applies reloaded options without touching the state or the counters.</summary>
    public void UpdateSettings(BreakerSettings settings)
    {
        lock (this)
        {
            _settings = settings;
            if (!settings.SamplesRatio)
            {
                _window = null;
            }
            else if (_window is null)
            {
                _window = new RollingWindow(settings.SamplingDuration, TimeProvider.TimestampFrequency);
            }
            else if (_window.SamplingDuration != settings.SamplingDuration)
            {
                _window = _window.Resized(settings.SamplingDuration, TimeProvider.TimestampFrequency, TimeProvider.GetTimestamp());
            }

            ShortenBreakLocked(settings.LongestBreak);
        }
    }

    /// <summary>
    /// Ends a running break no later than <paramref name="longest"/> from now. A reload is how an operator corrects a
    /// mistaken <c>BreakDuration</c> or <c>MaxBreakDuration</c> (up to a day): circuits it had opened must not stay open
    /// for the rest of such a break. A break is never lengthened, and one shorter than the new longest keeps its length.
    /// </summary>
    private void ShortenBreakLocked(TimeSpan longest)
    {
        if (_state != CircuitState.Open || _cold is not { Disposed: false } cold)
        {
            return;
        }

        var now = _clock.Now;
        var latest = now + _clock.ToUnits(longest);
        if (latest >= _retryAtCoarse)
        {
            return;
        }

        if (cold.FleetHeld)
        {
            cold.FleetHeldUntil -= _retryAtCoarse - latest; // the fleet's prober keeps the same wait after the break
        }

        Volatile.Write(ref _retryAtCoarse, latest);
        if (cold.LastBreak > longest)
        {
            cold.LastBreak = longest; // the next break grows from one the new settings allow
        }

        ScheduleBreakTimerLocked(longest);
    }

    public CircuitSnapshot GetSnapshot()
    {
        lock (this)
        {
            var state = EffectiveStateLocked();
            var open = state != CircuitState.Closed;
            var cold = _cold;
            return new CircuitSnapshot(
                state,
                _consecutiveFailures,
                FailureRatioLocked(),
                open ? cold!.OpenedAt : null,
                state is CircuitState.Open or CircuitState.HalfOpen ? RetryAtLocked() : null,
                open ? _clock.ToTimeSpan(_clock.Now - cold!.LeftClosedAt) : null,
                cold?.FailedProbes ?? 0);
        }
    }

    /// <summary>
    /// Retires the circuit (evicted, or the registry disposed). The calls it let through, and any a caller that found it
    /// just before takes from it still, report to a circuit nobody holds any more: their outcomes are ignored (see
    /// <see cref="IsCurrent"/>).
    /// </summary>
    public void Dispose()
    {
        lock (this)
        {
            var cold = ColdLocked;
            cold.Disposed = true;
            cold.BreakTimer?.Dispose();
            cold.BreakTimer = null;
        }
    }

    /// <summary>
    /// Tells the listeners that this circuit, retired by eviction (<see cref="Dispose"/>), turns no call away any more: its
    /// host gets a fresh closed circuit. Without it, a listener that follows the states (a dashboard, the fleet's
    /// coordinator) would keep the circuit open for good, as the retired circuit never changes again. Queued like any
    /// change, so it is heard after those the circuit made before it was retired.
    /// </summary>
    public void AnnounceEviction()
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            // The state last told (the break timer tells the move to half-open), not the effective one: the timer is gone.
            if (_state is CircuitState.Open or CircuitState.HalfOpen)
            {
                transition = PendLocked(new CircuitTransition(_state, CircuitState.Closed, TimeProvider.GetUtcNow(), null, Source: CircuitChangeSource.Eviction));

                // And closed it is, so that this change stays its last: a call that found it before the eviction (one that
                // waited in the bulkhead's queue, say) would otherwise move it to half-open after its break, and tell that
                // to the listeners (and the log and metrics) of a circuit no listing shows. Such a call goes through, as
                // on the fresh closed circuit of its host; its outcome is ignored, as for any retired circuit.
                _epoch++;
                _state = CircuitState.Closed;
                ColdLocked.RecoveredAt = null;
            }
        }

        Notify(transition);
    }

    /// <summary>
    /// Turns a call away without the lock while the circuit is open and its break lasts, which is every call to a
    /// broken host: the calls that must move the circuit (the first after the break) take the lock.
    /// </summary>
    private bool TryRejectDuringBreak(out CircuitPermit rejected)
    {
        if (_state == CircuitState.Open)
        {
            // The coarse clock: this runs for every call to a broken host. Its retry time is rounded up, so a call it
            // turns away is one the wall clock would too, give or take a tick of it; at the retry time the break timer
            // moves the circuit on anyway.
            var now = _clock.Now;
            var retryAt = Volatile.Read(ref _retryAtCoarse);

            // Read again after the retry time: a circuit that left Open meanwhile goes the locked way. One that left and
            // opened again may pair its state with the previous break's retry time, which only shifts the Retry-After.
            if (now < retryAt && _state == CircuitState.Open)
            {
                rejected = CircuitPermit.Rejected(CircuitState.Open, _clock.ToTimeSpan(retryAt - now));
                return true;
            }
        }

        rejected = default;
        return false;
    }

    private void SetRetryAtLocked(TimeSpan breakDuration) => Volatile.Write(ref _retryAtCoarse, _clock.Now + _clock.ToUnits(breakDuration));

    private bool BreakOverLocked(long now) => now >= _retryAtCoarse;

    /// <summary>When the break ends, on the wall clock as it reads now (which may have been stepped since the circuit opened).</summary>
    private DateTimeOffset RetryAtLocked() => TimeProvider.GetUtcNow() + _clock.ToTimeSpan(_retryAtCoarse - _clock.Now);

    private CircuitPermit TryAcquireSlow()
    {
        CircuitTransition? transition = null;
        CircuitPermit permit;
        lock (this)
        {
            if (_state == CircuitState.Closed)
            {
                // It closed between the lock-free read and this one.
                permit = CircuitPermit.Closed(_epoch);
            }
            else
            {
                var now = _clock.Now;
                var cold = ColdLocked;
                if (_state == CircuitState.Open && BreakOverLocked(now))
                {
                    transition = PendLocked(HalfOpenLocked(TimeProvider.GetUtcNow()));
                }

                permit = PermitLocked(cold, now);
            }
        }

        Notify(transition);
        return permit;
    }

    /// <param name="cold">The cold state.</param>
    /// <param name="now">The coarse clock's reading.</param>
    private CircuitPermit PermitLocked(Cold cold, long now)
    {
        switch (_state)
        {
            case CircuitState.HalfOpen when cold.FleetHeld && now < cold.FleetHeldUntil:
                // Another instance probes for the fleet; its verdict (or the end of the hold) decides.
                return CircuitPermit.Rejected(CircuitState.HalfOpen, _clock.ToTimeSpan(cold.FleetHeldUntil - now));
            case CircuitState.HalfOpen when cold.ProbesInFlight < _settings.HalfOpenProbes:
                cold.ProbesInFlight++;
                return CircuitPermit.Probe(_epoch);
            case CircuitState.Open:
                return CircuitPermit.Rejected(CircuitState.Open, _clock.ToTimeSpan(_retryAtCoarse - now));
            default:
                // Half-open with every probe slot taken, or isolated: no time to promise.
                return CircuitPermit.Rejected(_state, null);
        }
    }

    // A retired circuit takes no outcome: one could open it, and its log, metrics and StateChanged (a fleet vote among
    // them) would name a circuit no listing shows, no Reset reaches and no close ever follows, while calls to its host
    // go through the circuit that replaced it. Only read under the lock, never on the closed path's early return.
    private bool IsCurrent(in CircuitPermit permit) =>
        permit.Epoch == _epoch
        && _state == (permit.Kind == CircuitPermitKind.Probe ? CircuitState.HalfOpen : CircuitState.Closed)
        && _cold is not { Disposed: true };

    private double? FailureRatioLocked()
    {
        if (_window is null)
        {
            return null;
        }

        var (total, failures) = _window.Read(TimeProvider.GetTimestamp());
        return total == 0 ? 0 : (double)failures / total;
    }

    private CircuitState EffectiveStateLocked() =>
        _state == CircuitState.Open && BreakOverLocked(_clock.Now) ? CircuitState.HalfOpen : _state;

    private CircuitTransition OpenLocked(bool fromHalfOpen, TimeSpan? requestedBreak)
    {
        var now = TimeProvider.GetUtcNow();
        var settings = _settings;
        var cold = ColdLocked;

        // The growth resets only after the circuit stayed closed for one full break, so a circuit that
        // closes and fails again at once keeps backing off instead of flapping. A break the server asked for
        // is used as it is (bounded), unjittered: the server said when.
        TimeSpan breakDuration;
        TimeSpan effectiveBreak;
        if (requestedBreak is { } requested && requested > TimeSpan.Zero)
        {
            breakDuration = settings.RequestedBreak(requested);
            effectiveBreak = breakDuration;
        }
        else
        {
            // No break yet means no close yet either: ClosedAt is only read once a break has been taken.
            breakDuration = cold.LastBreak == TimeSpan.Zero || (!fromHalfOpen && _clock.Now - cold.ClosedAt >= _clock.ToUnits(cold.LastBreak))
                ? settings.BreakDuration
                : settings.NextBreak(cold.LastBreak);
            effectiveBreak = settings.Jittered(breakDuration);
        }

        cold.FleetHeld = false; // this instance's own evidence: it probes for itself after this break
        return EnterOpenLocked(now, breakDuration, effectiveBreak, CircuitChangeSource.Local);
    }

    /// <param name="now">The time of the transition.</param>
    /// <param name="breakDuration">The break before jitter, from which the next one grows.</param>
    /// <param name="effectiveBreak">The break actually waited.</param>
    /// <param name="source">Who decided it.</param>
    private CircuitTransition EnterOpenLocked(DateTimeOffset now, TimeSpan breakDuration, TimeSpan effectiveBreak, CircuitChangeSource source)
    {
        var cold = ColdLocked;
        var previous = _state;
        if (previous == CircuitState.Closed)
        {
            cold.LeftClosedAt = _clock.Now;
        }

        _epoch++;
        _state = CircuitState.Open;
        cold.LastBreak = breakDuration;
        cold.OpenedAt = now;
        SetRetryAtLocked(effectiveBreak);
        cold.ProbesInFlight = 0;
        cold.ProbeSuccesses = 0;
        ScheduleBreakTimerLocked(effectiveBreak);
        return new CircuitTransition(previous, CircuitState.Open, now, effectiveBreak, _consecutiveFailures, FailureRatioLocked(), cold.LastFailure, source);
    }

    private CircuitTransition HalfOpenLocked(DateTimeOffset now)
    {
        var cold = ColdLocked;
        _epoch++;
        _state = CircuitState.HalfOpen;
        cold.ProbesInFlight = 0;
        cold.ProbeSuccesses = 0;
        return new CircuitTransition(CircuitState.Open, CircuitState.HalfOpen, now, null);
    }

    private CircuitTransition CloseLocked()
    {
        var now = TimeProvider.GetUtcNow();
        var cold = ColdLocked;
        var previous = _state;
        cold.RecoveredAt = previous == CircuitState.HalfOpen ? _clock.Now : null;
        cold.BreakTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _epoch++;
        _state = CircuitState.Closed;
        cold.FleetHeld = false;
        cold.ClosedAt = _clock.Now;
        _consecutiveFailures = 0;
        cold.FailedProbes = 0;
        cold.ProbesInFlight = 0;
        cold.ProbeSuccesses = 0;
        _window?.Clear();
        return new CircuitTransition(previous, CircuitState.Closed, now, null);
    }

    private void ScheduleBreakTimerLocked(TimeSpan dueTime)
    {
        var cold = ColdLocked;
        if (cold.Disposed)
        {
            return;
        }

        // The timer makes the move to half-open visible (events, logs) when it happens rather than when
        // the next call arrives; calls check the time themselves, so a late timer changes nothing else.
        cold.BreakTimer ??= CreateBreakTimer();
        cold.BreakTimer.Change(dueTime, Timeout.InfiniteTimeSpan);
    }

    private ITimer CreateBreakTimer()
    {
        // Created on the call that opened the circuit, and kept for the circuit's lifetime: without the flow suppressed,
        // the timer would hold that call's execution context (its activity, logging scopes, HttpContext) and run every
        // move to half-open, its log and its StateChanged handlers in it, long after the call ended.
        using (ExecutionContext.IsFlowSuppressed() ? default(AsyncFlowControl?) : ExecutionContext.SuppressFlow())
        {
            return TimeProvider.CreateTimer(
                static state => ((CircuitStateMachine)state!).OnBreakElapsed(),
                this,
                Timeout.InfiniteTimeSpan,
                Timeout.InfiniteTimeSpan);
        }
    }

    private void OnBreakElapsed()
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            var cold = ColdLocked;
            if (_state != CircuitState.Open || cold.Disposed)
            {
                return;
            }

            var now = _clock.Now;
            if (BreakOverLocked(now))
            {
                transition = PendLocked(HalfOpenLocked(TimeProvider.GetUtcNow()));
            }
            else
            {
                ScheduleBreakTimerLocked(_clock.ToTimeSpan(_retryAtCoarse - now));
            }
        }

        Notify(transition);
    }

    /// <summary>Queues a transition for <see cref="Notify"/>, in the order the lock saw it; only under the lock.</summary>
    private CircuitTransition PendLocked(CircuitTransition transition)
    {
        var cold = ColdLocked;
        (cold.Pending ??= new Queue<CircuitTransition>(2)).Enqueue(transition);
        return transition;
    }

    /// <summary>
    /// Tells the listeners of the transitions queued so far, outside the lock, in the order they happened. Two threads
    /// that move the circuit one after the other would otherwise race to tell theirs: a listener could hear the later
    /// first and keep a state the circuit has left (a reset heard before the open it undid). So one thread at a time
    /// tells them all; a thread whose transition another is telling leaves it to that one.
    /// </summary>
    private void Notify(CircuitTransition? transition)
    {
        if (transition is null)
        {
            return;
        }

        Cold cold;
        lock (this)
        {
            cold = ColdLocked;
            if (cold.Notifying)
            {
                return;
            }

            cold.Notifying = true;
        }

        try
        {
            while (true)
            {
                CircuitTransition next;
                lock (this)
                {
                    if (!cold.Pending!.TryDequeue(out next))
                    {
                        cold.Notifying = false;
                        return;
                    }
                }

                OnTransition(next);
            }
        }
        catch
        {
            // The next transition's thread takes over what is left in the queue.
            lock (this)
            {
                cold.Notifying = false;
            }

            throw;
        }
    }

    /// <summary>Called after every state change, outside the lock.</summary>
    protected virtual void OnTransition(CircuitTransition transition) => _cold?.OnTransition?.Invoke(transition);

    /// <summary>
    /// What the machine keeps only once something has gone wrong: the break and its times, the probes, the fleet's
    /// hold, the break timer. A circuit creates it at its first failure (or isolation, or disposal) and keeps it.
    /// </summary>
    /// <remarks>
    /// Kept apart because with many hosts most circuits are healthy and never touch any of it: in the machine itself
    /// these fields made every circuit about 100 bytes larger and spread the fields each call reads over more cache
    /// lines. Only read and written under the machine's lock.
    /// </remarks>
    private sealed class Cold
    {
        public Action<CircuitTransition>? OnTransition;
        public string? LastFailure;
        public ITimer? BreakTimer;
        public UtcTime OpenedAt;
        public long ClosedAt; // on the coarse clock, as the break's end is
        public long LeftClosedAt; // on the coarse clock: how long a circuit is out of Closed must not follow steps of the wall clock
        public long? RecoveredAt; // on the coarse clock
        public TimeSpan LastBreak;
        public long FleetHeldUntil; // on the coarse clock
        public int ProbesInFlight;
        public int ProbeSuccesses;
        public int FailedProbes;
        public bool Disposed;

        // The transitions not yet told to the listeners, and whether a thread is telling them (see Notify).
        public Queue<CircuitTransition>? Pending;
        public bool Notifying;

        // Set while a fleet-wide open is in force here: at half-open this instance sends no probe of its own unless
        // the fleet grants it one, until the hold runs out (so a fleet prober that crashed cannot block recovery).
        public bool FleetHeld;
    }
}
