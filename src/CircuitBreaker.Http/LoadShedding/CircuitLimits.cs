using System.Threading.RateLimiting;

namespace CircuitBreaker.Http;

/// <summary>
/// The load-shedding limits of one circuit, from <c>System.Threading.RateLimiting</c>: a bulkhead
/// (<see cref="ConcurrencyLimiter"/>), a throttle (<see cref="TokenBucketRateLimiter"/>) and the slow start
/// after recovery. Created only for circuits that set one; replaced on reload.
/// </summary>
internal sealed class CircuitLimits : IDisposable
{
    /// <summary>The share of calls let through at the start of a ramp-up.</summary>
    public const double RampUpStartShare = 0.1;

    private readonly Settings _settings;
    private readonly ConcurrencyLimiter? _concurrency;
    private readonly TokenBucketRateLimiter? _throttle;
    private readonly TimeSpan? _rampUp;
    private readonly Lock _rampLock = new();
    private double _rampCredit;

    /// <param name="options">The host's options.</param>
    /// <param name="settings">Their limits.</param>
    /// <param name="current">The limits being replaced on reload, whose limiters are kept where their own settings did not change.</param>
    private CircuitLimits(CircuitBreakerOptions options, Settings settings, CircuitLimits? current = null)
    {
        _settings = settings;
        if (current is not null && current._settings.SameBulkhead(settings))
        {
            _concurrency = current._concurrency;
        }
        else if (options.MaxConcurrentRequests is { } permits)
        {
            _concurrency = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
            {
                PermitLimit = permits,
                QueueLimit = options.MaxQueuedRequests,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            });
        }

        if (current is not null && current._settings.SameThrottle(settings))
        {
            _throttle = current._throttle;
        }
        else if (options.Throttle.PermitsPerSecond is { } rate)
        {
            // Replenished on demand rather than by a timer per circuit: TryReplenish adds what the time elapsed
            // since the last call allows. The limiter reads the system clock, not the injected TimeProvider, which
            // System.Threading.RateLimiting does not support (dotnet/runtime#106447).
            _throttle = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = options.Throttle.Burst ?? (int)Math.Ceiling(rate),
                TokensPerPeriod = 1,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1 / rate),
                AutoReplenishment = false,
                QueueLimit = 0,
            });
        }

        _rampUp = options.RampUpDuration is { } ramp && ramp > TimeSpan.Zero ? ramp : null;
    }

    public bool HasConcurrencyLimit => _concurrency is not null;

    /// <summary>Whether the circuit starts slowly after it recovers (<c>RampUpDuration</c>).</summary>
    public bool HasRampUp => _rampUp is not null;

    public static CircuitLimits? From(CircuitBreakerOptions options) =>
        Settings.Of(options) is { IsNone: false } settings ? new CircuitLimits(options, settings) : null;

    /// <summary>
    /// The limits for reloaded options: <paramref name="current"/> itself while its settings are unchanged, so that
    /// a reload (of any key of the configuration, the breaker's or not) neither empties a bulkhead whose calls are
    /// still running nor refills the throttle's bucket; otherwise new limits, which keep each limiter of
    /// <paramref name="current"/> whose own settings did not change (a new throttle rate leaves the bulkhead, and the
    /// calls it holds, as it was).
    /// </summary>
    /// <remarks>
    /// Limiters that are replaced are not disposed: disposing a <see cref="ConcurrencyLimiter"/> fails the calls
    /// waiting in its queue, which did nothing wrong. The old limiters hold no timer, so calls queued or running
    /// under them finish under them and they are collected afterwards; until then the old and the new bulkhead each
    /// admit their own calls.
    /// </remarks>
    public static CircuitLimits? Update(CircuitLimits? current, CircuitBreakerOptions options)
    {
        if (current is null)
        {
            return From(options);
        }

        var settings = Settings.Of(options);
        return current._settings == settings ? current
            : settings.IsNone ? null
            : new CircuitLimits(options, settings, current);
    }

    /// <summary>
    /// Whether a call may go <paramref name="sinceRecovery"/> into the slow start: the share let through
    /// grows linearly from <see cref="RampUpStartShare"/> to all over the ramp, spread evenly (every call adds
    /// the current share to a credit; a call goes when the credit reaches one), so the curve holds exactly.
    /// </summary>
    public bool AdmitDuringRampUp(TimeSpan? sinceRecovery)
    {
        if (_rampUp is not { } ramp || sinceRecovery is not { } since)
        {
            return true;
        }

        if (since >= ramp)
        {
            return true;
        }

        var share = RampUpStartShare + ((1 - RampUpStartShare) * Math.Max(0, since / ramp));
        lock (_rampLock)
        {
            _rampCredit += share;
            if (_rampCredit < 1 - 1e-9) // tolerate rounding: ten tenths make a call
            {
                return false;
            }

            _rampCredit -= 1;
            return true;
        }
    }

    /// <summary>Takes a token of the throttle, if it has one; otherwise says when the next one comes.</summary>
    public bool TryThrottle(out TimeSpan? retryAfter)
    {
        retryAfter = null;
        if (_throttle is null)
        {
            return true;
        }

        _throttle.TryReplenish();
        using var lease = _throttle.AttemptAcquire();
        if (lease.IsAcquired)
        {
            return true;
        }

        if (lease.TryGetMetadata(MetadataName.RetryAfter, out var wait))
        {
            retryAfter = wait;
        }

        return false;
    }

    /// <summary>Takes a concurrency permit, waiting in the queue when it has room.</summary>
    public ValueTask<RateLimitLease> EnterAsync(CancellationToken cancellationToken) =>
        _concurrency!.AcquireAsync(1, cancellationToken);

    /// <summary>Takes a concurrency permit without waiting (the synchronous path cannot queue).</summary>
    public RateLimitLease Enter() => _concurrency!.AttemptAcquire();

    public void Dispose()
    {
        _concurrency?.Dispose();
        _throttle?.Dispose();
    }

    /// <summary>Every option the limits are built from, to tell whether a reload changed them.</summary>
    private readonly record struct Settings(int? MaxConcurrentRequests, int MaxQueuedRequests, double? PermitsPerSecond, int? Burst, TimeSpan? RampUpDuration)
    {
        /// <summary>Whether no limit is set, so that the circuit needs no limits at all.</summary>
        public bool IsNone => MaxConcurrentRequests is null && PermitsPerSecond is null && RampUpDuration is null;

        public static Settings Of(CircuitBreakerOptions options) =>
            new(options.MaxConcurrentRequests, options.MaxQueuedRequests, options.Throttle.PermitsPerSecond, options.Throttle.Burst, options.RampUpDuration);

        public bool SameBulkhead(in Settings other) => MaxConcurrentRequests == other.MaxConcurrentRequests && MaxQueuedRequests == other.MaxQueuedRequests;

        public bool SameThrottle(in Settings other) => PermitsPerSecond == other.PermitsPerSecond && Burst == other.Burst;
    }
}
