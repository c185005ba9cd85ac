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
    private readonly TimeProvider _timeProvider;
    private readonly CoarseClock _clock;
    private readonly Action<CircuitTransition>? _onTransition;

    private BreakerSettings _settings;
    private volatile CircuitState _state = CircuitState.Closed;
    private long _epoch;
    private int _consecutiveFailures;
    private RollingWindow? _window;
    private int _probesInFlight;
    private int _probeSuccesses;
    private UtcTime _openedAt;
    private UtcTime _retryAt;
    private long _retryAtCoarse; // _retryAt on the coarse clock (rounded up), which a reader without the lock can read whole
    private UtcTime _closedAt;
    private UtcTime _leftClosedAt;
    private UtcTime? _recoveredAt;
    private int _failedProbes;
    private string? _lastFailure;
    private TimeSpan _lastBreak;
    private ITimer? _breakTimer;
    private bool _disposed;

    // Set while a fleet-wide open is in force here: at half-open this instance sends no probe of its own unless
    // the fleet grants it one, until the hold runs out (so a fleet prober that crashed cannot block recovery).
    private bool _fleetHeld;
    private UtcTime _fleetHeldUntil;

    /// <param name="settings">The breaker's settings.</param>
    /// <param name="timeProvider">Its clock.</param>
    /// <param name="onTransition">Told of every state change, after the lock is released; a derived class may override <see cref="OnTransition"/> instead.</param>
    public CircuitStateMachine(BreakerSettings settings, TimeProvider timeProvider, Action<CircuitTransition>? onTransition = null)
    {
        _settings = settings;
        _timeProvider = timeProvider;
        _clock = CoarseClock.For(timeProvider);
        _onTransition = onTransition;
        _closedAt = timeProvider.GetUtcNow();
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
                    if (_state == CircuitState.Open && _timeProvider.GetUtcNow() >= _retryAt)
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

    /// <summary>When the circuit last closed after a successful probe, for the slow start; <see langword="null"/> otherwise.</summary>
    public DateTimeOffset? RecoveredAt
    {
        get
        {
            lock (this)
            {
                return _state == CircuitState.Closed ? _recoveredAt : null;
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
                _window?.Record(_timeProvider.GetTimestamp(), failed: false);
            }
            else
            {
                _probesInFlight--;
                if (++_probeSuccesses >= _settings.HalfOpenProbes)
                {
                    transition = CloseLocked();
                }
            }
        }

        Notify(transition);
    }

    /// <param name="permit">The permit the call was let in with.</param>
    /// <param name="failure">What kind of failure it was (for logs and health), such as <c>503</c> or <c>timeout</c>.</param>
    /// <param name="requestedBreak">
    /// How long the downstream asked to be left alone, if it did (a server's <c>Retry-After</c>): should this
    /// failure open the circuit, it opens for that long, bounded by <c>MaxBreakDuration</c>.
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

            _lastFailure = failure;
            if (permit.Kind == CircuitPermitKind.Closed)
            {
                _consecutiveFailures++;
                var settings = _settings;
                var tripped = settings.FailureThreshold > 0 && _consecutiveFailures >= settings.FailureThreshold;
                if (_window is not null)
                {
                    _window.Record(_timeProvider.GetTimestamp(), failed: true);
                    var (total, failures) = _window.Read(_timeProvider.GetTimestamp());
                    tripped |= total >= settings.MinimumThroughput && failures >= settings.FailureRatio * total;
                }

                if (tripped)
                {
                    transition = OpenLocked(fromHalfOpen: false, requestedBreak);
                }
            }
            else
            {
                _failedProbes++;
                transition = OpenLocked(fromHalfOpen: true, requestedBreak);
            }
        }

        Notify(transition);
    }

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
                _probesInFlight--;
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
                _breakTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _epoch++;
                _state = CircuitState.Isolated;
                _openedAt = _timeProvider.GetUtcNow();
                if (previous == CircuitState.Closed)
                {
                    _leftClosedAt = _openedAt;
                }

                _probesInFlight = 0;
                _fleetHeld = false;
                transition = new CircuitTransition(previous, CircuitState.Isolated, _openedAt, null, Source: CircuitChangeSource.Operator);
            }
        }

        Notify(transition);
    }

    /// <summary>Closes the circuit by hand, forgetting its failures and its break growth.</summary>
    public void Reset()
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            _lastBreak = TimeSpan.Zero;
            if (_state != CircuitState.Closed)
            {
                var previous = EffectiveStateLocked();
                transition = CloseLocked() with { PreviousState = previous, Source = CircuitChangeSource.Operator };
            }
            else
            {
                _consecutiveFailures = 0;
                _window?.Clear();
            }
        }

        Notify(transition);
    }

    /// <summary>
    /// Opens the circuit because the fleet decided so (or keeps it open, taking the later retry time), and holds
    /// its half-open probe for the fleet's prober: after the break this instance turns calls away until the fleet
    /// grants it the probe (<see cref="GrantFleetProbe"/>), closes it (<see cref="CloseForFleet"/>), or
    /// <paramref name="probeWait"/> has passed, when it probes by itself.
    /// </summary>
    public void OpenForFleet(TimeSpan breakDuration, TimeSpan probeWait)
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            if (_state == CircuitState.Isolated || _disposed)
            {
                return; // an operator's order outranks the fleet's
            }

            var now = _timeProvider.GetUtcNow();
            var retryAt = now + breakDuration;
            if (_state == CircuitState.Open)
            {
                // Often opened by the very failures that made the quorum: no new transition, just the fleet's timing.
                if (retryAt > _retryAt)
                {
                    SetRetryAtLocked(now, breakDuration);
                    ScheduleBreakTimerLocked(breakDuration);
                }
            }
            else
            {
                transition = EnterOpenLocked(now, breakDuration, breakDuration, CircuitChangeSource.Fleet);
            }

            _fleetHeld = true;
            _fleetHeldUntil = _retryAt.ToDateTimeOffset() + probeWait;
        }

        Notify(transition);
    }

    /// <summary>Lets this instance send the fleet's probe of a circuit held by <see cref="OpenForFleet"/>.</summary>
    /// <returns><see langword="true"/> if the circuit was held.</returns>
    public bool GrantFleetProbe()
    {
        lock (this)
        {
            var held = _fleetHeld;
            _fleetHeld = false;
            return held;
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
            if (!_fleetHeld || _state is CircuitState.Closed or CircuitState.Isolated)
            {
                return false;
            }

            var previous = EffectiveStateLocked();
            transition = CloseLocked() with { PreviousState = previous, Source = CircuitChangeSource.Fleet };
        }

        Notify(transition);
        return true;
    }

    /// <summary>Forgets a fleet hold: the circuit probes by itself again after its break.</summary>
    public void ReleaseFleetHold()
    {
        lock (this)
        {
            _fleetHeld = false;
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
            else if (_window is null || _window.SamplingDuration != settings.SamplingDuration)
            {
                _window = new RollingWindow(settings.SamplingDuration, _timeProvider.TimestampFrequency);
            }
        }
    }

    public CircuitSnapshot GetSnapshot()
    {
        lock (this)
        {
            var state = EffectiveStateLocked();
            var open = state != CircuitState.Closed;
            return new CircuitSnapshot(
                state,
                _consecutiveFailures,
                FailureRatioLocked(),
                open ? _openedAt : null,
                state is CircuitState.Open or CircuitState.HalfOpen ? _retryAt : null,
                open ? _leftClosedAt : null,
                _failedProbes);
        }
    }

    public void Dispose()
    {
        lock (this)
        {
            _disposed = true;
            _breakTimer?.Dispose();
            _breakTimer = null;
        }
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

    private void SetRetryAtLocked(DateTimeOffset now, TimeSpan breakDuration)
    {
        _retryAt = now + breakDuration;
        Volatile.Write(ref _retryAtCoarse, _clock.Now + _clock.ToUnits(breakDuration));
    }

    private CircuitPermit TryAcquireSlow()
    {
        CircuitTransition? transition = null;
        CircuitPermit permit;
        lock (this)
        {
            var now = _timeProvider.GetUtcNow();
            if (_state == CircuitState.Open && now >= _retryAt)
            {
                transition = HalfOpenLocked(now);
            }

            switch (_state)
            {
                case CircuitState.Closed:
                    permit = CircuitPermit.Closed(_epoch);
                    break;
                case CircuitState.HalfOpen when _fleetHeld && now < _fleetHeldUntil:
                    // Another instance probes for the fleet; its verdict (or the end of the hold) decides.
                    permit = CircuitPermit.Rejected(CircuitState.HalfOpen, _fleetHeldUntil - now);
                    break;
                case CircuitState.HalfOpen when _probesInFlight < _settings.HalfOpenProbes:
                    _probesInFlight++;
                    permit = CircuitPermit.Probe(_epoch);
                    break;
                case CircuitState.Open:
                    permit = CircuitPermit.Rejected(CircuitState.Open, _retryAt - now);
                    break;
                default:
                    // Half-open with every probe slot taken, or isolated: no time to promise.
                    permit = CircuitPermit.Rejected(_state, null);
                    break;
            }
        }

        Notify(transition);
        return permit;
    }

    private bool IsCurrent(in CircuitPermit permit) =>
        permit.Epoch == _epoch
        && _state == (permit.Kind == CircuitPermitKind.Probe ? CircuitState.HalfOpen : CircuitState.Closed);

    private double? FailureRatioLocked()
    {
        if (_window is null)
        {
            return null;
        }

        var (total, failures) = _window.Read(_timeProvider.GetTimestamp());
        return total == 0 ? 0 : (double)failures / total;
    }

    private CircuitState EffectiveStateLocked() =>
        _state == CircuitState.Open && _timeProvider.GetUtcNow() >= _retryAt ? CircuitState.HalfOpen : _state;

    private CircuitTransition OpenLocked(bool fromHalfOpen, TimeSpan? requestedBreak)
    {
        var now = _timeProvider.GetUtcNow();
        var settings = _settings;

        // The growth resets only after the circuit stayed closed for one full break, so a circuit that
        // closes and fails again at once keeps backing off instead of flapping. A break the server asked for
        // is used as it is (bounded), unjittered: the server said when.
        TimeSpan breakDuration;
        TimeSpan effectiveBreak;
        if (requestedBreak is { } requested && requested > TimeSpan.Zero)
        {
            breakDuration = requested < settings.MaxBreakDuration ? requested : settings.MaxBreakDuration;
            effectiveBreak = breakDuration;
        }
        else
        {
            breakDuration = _lastBreak == TimeSpan.Zero || (!fromHalfOpen && now - _closedAt >= _lastBreak)
                ? settings.BreakDuration
                : settings.NextBreak(_lastBreak);
            effectiveBreak = settings.Jittered(breakDuration);
        }

        _fleetHeld = false; // this instance's own evidence: it probes for itself after this break
        return EnterOpenLocked(now, breakDuration, effectiveBreak, CircuitChangeSource.Local);
    }

    /// <param name="now">The time of the transition.</param>
    /// <param name="breakDuration">The break before jitter, from which the next one grows.</param>
    /// <param name="effectiveBreak">The break actually waited.</param>
    /// <param name="source">Who decided it.</param>
    private CircuitTransition EnterOpenLocked(DateTimeOffset now, TimeSpan breakDuration, TimeSpan effectiveBreak, CircuitChangeSource source)
    {
        var previous = _state;
        if (previous == CircuitState.Closed)
        {
            _leftClosedAt = now;
        }

        _epoch++;
        _state = CircuitState.Open;
        _lastBreak = breakDuration;
        _openedAt = now;
        SetRetryAtLocked(now, effectiveBreak);
        _probesInFlight = 0;
        _probeSuccesses = 0;
        ScheduleBreakTimerLocked(effectiveBreak);
        return new CircuitTransition(previous, CircuitState.Open, now, effectiveBreak, _consecutiveFailures, FailureRatioLocked(), _lastFailure, source);
    }

    private CircuitTransition HalfOpenLocked(DateTimeOffset now)
    {
        _epoch++;
        _state = CircuitState.HalfOpen;
        _probesInFlight = 0;
        _probeSuccesses = 0;
        return new CircuitTransition(CircuitState.Open, CircuitState.HalfOpen, now, null);
    }

    private CircuitTransition CloseLocked()
    {
        var now = _timeProvider.GetUtcNow();
        var previous = _state;
        _recoveredAt = previous == CircuitState.HalfOpen ? now : null;
        _breakTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _epoch++;
        _state = CircuitState.Closed;
        _fleetHeld = false;
        _closedAt = now;
        _consecutiveFailures = 0;
        _failedProbes = 0;
        _probesInFlight = 0;
        _probeSuccesses = 0;
        _window?.Clear();
        return new CircuitTransition(previous, CircuitState.Closed, now, null);
    }

    private void ScheduleBreakTimerLocked(TimeSpan dueTime)
    {
        if (_disposed)
        {
            return;
        }

        // The timer makes the move to half-open visible (events, logs) when it happens rather than when
        // the next call arrives; calls check the time themselves, so a late timer changes nothing else.
        _breakTimer ??= _timeProvider.CreateTimer(
            static state => ((CircuitStateMachine)state!).OnBreakElapsed(),
            this,
            Timeout.InfiniteTimeSpan,
            Timeout.InfiniteTimeSpan);
        _breakTimer.Change(dueTime, Timeout.InfiniteTimeSpan);
    }

    private void OnBreakElapsed()
    {
        CircuitTransition? transition = null;
        lock (this)
        {
            if (_state != CircuitState.Open || _disposed)
            {
                return;
            }

            var now = _timeProvider.GetUtcNow();
            if (now >= _retryAt)
            {
                transition = HalfOpenLocked(now);
            }
            else
            {
                ScheduleBreakTimerLocked(_retryAt - now);
            }
        }

        Notify(transition);
    }

    private void Notify(CircuitTransition? transition)
    {
        if (transition is { } t)
        {
            OnTransition(t);
        }
    }

    /// <summary>Called after every state change, outside the lock.</summary>
    protected virtual void OnTransition(CircuitTransition transition) => _onTransition?.Invoke(transition);
}
