using System.ComponentModel.DataAnnotations;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// Options of the circuit breaker of one <see cref="HttpClient"/>. Every property can be bound from the
/// configuration section <c>CircuitBreaker</c>, overlaid by <c>CircuitBreaker:Clients:{clientName}</c>, and
/// per downstream host by <see cref="Hosts"/>.
/// </summary>
/// <remarks>
/// Options are validated when the host starts (or when the client is first created) and on every reload;
/// a reload with invalid values is logged and ignored, so the last valid options stay in force.
/// </remarks>
public class CircuitBreakerOptions
{
    private const string MinDuration = "00:00:00.001";
    private const string MaxDuration = "1.00:00:00";

    /// <summary>
    /// Gets or sets the number of consecutive failures that opens the circuit; 0 turns this trigger off.
    /// </summary>
    /// <value>The default value is 5.</value>
    [Range(0, int.MaxValue)]
    public int FailureThreshold { get; set; } = 5;

    /// <summary>
    /// Gets or sets the ratio of failed calls within <see cref="SamplingDuration"/> that opens the circuit,
    /// once at least <see cref="MinimumThroughput"/> calls were made; 0 turns this trigger off.
    /// </summary>
    /// <value>The default value is 0 (off). Otherwise a value in (0, 1].</value>
    [Range(0.0, 1.0)]
    public double FailureRatio { get; set; }

    /// <summary>Gets or sets the number of calls needed within the sampling window before <see cref="FailureRatio"/> counts.</summary>
    /// <value>The default value is 10.</value>
    [Range(1, int.MaxValue)]
    public int MinimumThroughput { get; set; } = 10;

    /// <summary>Gets or sets the rolling window over which <see cref="FailureRatio"/> is measured.</summary>
    /// <value>The default value is 30 seconds.</value>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), MinDuration, MaxDuration)]
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets how long the circuit stays open the first time before a probe is let through.</summary>
    /// <value>The default value is 30 seconds.</value>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), MinDuration, MaxDuration)]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Gets or sets the growth of the break each time a probe fails (the next break is the previous one
    /// times this value, up to <see cref="MaxBreakDuration"/>). The growth resets once the circuit has stayed
    /// closed for a full break.
    /// </summary>
    /// <value>The default value is 1.0 (no growth). At least 1.</value>
    [Range(1.0, 1000.0)]
    public double BreakDurationMultiplier { get; set; } = 1.0;

    /// <summary>
    /// Gets or sets the cap on the growth of the break. It limits growth only: a <see cref="BreakDuration"/>
    /// above it is used as is.
    /// </summary>
    /// <value>The default value is 5 minutes.</value>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), MinDuration, MaxDuration)]
    public TimeSpan MaxBreakDuration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets how much each break is spread at random, as a share of it: with 0.1 a 30 s break lasts
    /// between 27 and 33 s. Spreading keeps the instances of a fleet whose circuits opened together from all
    /// probing a recovering service at the same moment.
    /// </summary>
    /// <value>The default value is 0 (no jitter). At most 0.99.</value>
    [Range(0.0, 0.99)]
    public double BreakDurationJitter { get; set; }

    /// <summary>
    /// Gets or sets a value indicating whether a 503 or 429 response with <c>Retry-After</c> that opens the
    /// circuit opens it for as long as the server asked (bounded by <see cref="MaxBreakDuration"/>, or by a longer
    /// <see cref="BreakDuration"/>), which <see cref="CircuitOpenException.RetryAfter"/> then reports.
    /// </summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool HonorRetryAfter { get; set; } = true;

    /// <summary>
    /// Gets or sets how many probe calls may be in flight at once in half-open, which is also the number of
    /// successful probes in a row needed to close the circuit.
    /// </summary>
    /// <value>The default value is 1.</value>
    [Range(1, 1000)]
    public int HalfOpenProbes { get; set; } = 1;

    /// <summary>
    /// Gets or sets the time a call may take until its response headers arrive; its expiry counts as a
    /// failure and surfaces as a <see cref="TaskCanceledException"/> whose inner exception is a
    /// <see cref="TimeoutException"/>. <see langword="null"/> or <see cref="Timeout.InfiniteTimeSpan"/> turns it off;
    /// otherwise it is at most 4,294,967,294 milliseconds (about 49.7 days), the longest a timer accepts. Keep it
    /// shorter than <see cref="HttpClient.Timeout"/>: inside a handler that timeout looks exactly like the caller
    /// cancelling, so it is never counted as a failure.
    /// </summary>
    /// <remarks>
    /// While it is on, the handlers below the breaker get a token of the breaker's own, which fires on this timeout
    /// or on the caller's cancellation. The caller's cancellation is passed on to it once the call below has gone
    /// asynchronous (at once if the caller had cancelled before the call), so that a call answered synchronously
    /// costs no registration. A handler below that blocks its thread before returning sees the caller's
    /// cancellation only when it returns; this timeout still reaches it.
    /// </remarks>
    /// <value>The default value is 10 seconds.</value>
    public TimeSpan? AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the duration above which a call that completed is still counted as a failure.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (off); <see cref="Timeout.InfiniteTimeSpan"/> is off too.</value>
    public TimeSpan? SlowCallDuration { get; set; }

    /// <summary>
    /// Gets or sets the response status codes counted as failures, as a comma-separated list of codes
    /// (<c>503</c>), ranges (<c>500-504</c>) and classes (<c>5xx</c>), for example <c>"5xx,408,429"</c>.
    /// </summary>
    /// <value>The default value is <c>"5xx"</c>: every 5xx status.</value>
    [Required]
    public string FailureStatusCodes { get; set; } = "5xx";

    /// <summary>
    /// Gets or sets the maximum number of circuits (downstream authorities) kept for one client. When it is
    /// reached, idle closed circuits are evicted first, so memory stays bounded whatever hosts are called.
    /// </summary>
    /// <value>The default value is 1000.</value>
    [Range(1, 10_000_000)]
    public int MaxCircuits { get; set; } = 1000;

    /// <summary>
    /// Gets or sets the most calls to one host in flight at once (a bulkhead): further calls wait in a queue of
    /// <see cref="MaxQueuedRequests"/>, or are shed at once. A permit is held until the response headers arrive.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (no limit).</value>
    [Range(1, int.MaxValue)]
    public int? MaxConcurrentRequests { get; set; }

    /// <summary>Gets or sets how many calls may wait for a permit of <see cref="MaxConcurrentRequests"/>, oldest first.</summary>
    /// <value>The default value is 0: calls beyond the limit are shed at once.</value>
    [Range(0, int.MaxValue)]
    public int MaxQueuedRequests { get; set; }

    /// <summary>Gets the token bucket that throttles the calls to each host.</summary>
    /// <value>The default value is no throttling.</value>
    [ValidateObjectMembers]
    public ThrottleOptions Throttle { get; } = new();

    /// <summary>
    /// Gets or sets the slow start after recovery: once a circuit closes after a successful probe, the share of
    /// calls let through grows from a tenth to all over this duration; the rest take the fallback chain, so a
    /// service that just recovered is not flattened again by the whole backlog.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (off).</value>
    public TimeSpan? RampUpDuration { get; set; }

    /// <summary>
    /// Gets or sets a value indicating whether open circuits turn calls away. With <see langword="false"/>
    /// (observe-only) a circuit tracks, reports and logs every transition as it would otherwise, and the calls it
    /// or a load-shedding limit would turn away are sent all the same: a way to roll a breaker out and tune its
    /// thresholds on real traffic first. A circuit isolated by hand still turns calls away: isolating it is an explicit order.
    /// </summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool Enforce { get; set; } = true;

    /// <summary>
    /// Gets what a caller gets instead of <see cref="CircuitOpenException"/> while a circuit is open (or instead of
    /// <see cref="LoadSheddingException"/> when a limit sheds a call): a custom answer, the last good cached response,
    /// an alternate backend, or a degraded response.
    /// </summary>
    /// <value>The default value is no fallback: callers get <see cref="CircuitOpenException"/>.</value>
    [ValidateObjectMembers]
    public CircuitBreakerFallbackOptions Fallback { get; } = new();

    /// <summary>
    /// Gets the per-host overrides. Keys are host names (<c>users.internal</c>), matched case-insensitively
    /// for every port of that host; each override changes only the values it sets.
    /// </summary>
    /// <value>The default value is an empty dictionary.</value>
    public IDictionary<string, CircuitBreakerHostOptions> Hosts { get; } =
        new Dictionary<string, CircuitBreakerHostOptions>(StringComparer.OrdinalIgnoreCase);

    /// <summary>The options in force for <paramref name="host"/>: these options with its override, if any, laid over them.</summary>
    internal CircuitBreakerOptions ForHost(string host) =>
        FindHost(host) is { } overrides ? WithOverrides(overrides) : this;

    /// <summary>The override for <paramref name="host"/> (as <see cref="Uri.IdnHost"/> gives it), whether its key is written in Unicode or punycode.</summary>
    private CircuitBreakerHostOptions? FindHost(string host)
    {
        if (Hosts.TryGetValue(host, out var overrides))
        {
            return overrides;
        }

        foreach (var (key, value) in Hosts)
        {
            if (string.Equals(AsciiHost(key), host, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>The host as a request's <see cref="Uri.IdnHost"/> gives it, when <paramref name="host"/> is written in Unicode.</summary>
    internal static string AsciiHost(string host)
    {
        try
        {
            return new System.Globalization.IdnMapping().GetAscii(host);
        }
        catch (ArgumentException)
        {
            return host; // not a valid IDN name: validation reports it
        }
    }

    internal CircuitBreakerOptions WithOverrides(CircuitBreakerHostOptions overrides)
    {
        var merged = new CircuitBreakerOptions
        {
            FailureThreshold = overrides.FailureThreshold ?? FailureThreshold,
            FailureRatio = overrides.FailureRatio ?? FailureRatio,
            MinimumThroughput = overrides.MinimumThroughput ?? MinimumThroughput,
            SamplingDuration = overrides.SamplingDuration ?? SamplingDuration,
            BreakDuration = overrides.BreakDuration ?? BreakDuration,
            BreakDurationMultiplier = overrides.BreakDurationMultiplier ?? BreakDurationMultiplier,
            MaxBreakDuration = overrides.MaxBreakDuration ?? MaxBreakDuration,
            HalfOpenProbes = overrides.HalfOpenProbes ?? HalfOpenProbes,
            BreakDurationJitter = overrides.BreakDurationJitter ?? BreakDurationJitter,
            HonorRetryAfter = overrides.HonorRetryAfter ?? HonorRetryAfter,
            AttemptTimeout = overrides.AttemptTimeout ?? AttemptTimeout,
            SlowCallDuration = overrides.SlowCallDuration ?? SlowCallDuration,
            FailureStatusCodes = overrides.FailureStatusCodes ?? FailureStatusCodes,
            MaxCircuits = MaxCircuits,
            Enforce = overrides.Enforce ?? Enforce,
            MaxConcurrentRequests = overrides.MaxConcurrentRequests ?? MaxConcurrentRequests,
            MaxQueuedRequests = overrides.MaxQueuedRequests ?? MaxQueuedRequests,
            RampUpDuration = overrides.RampUpDuration ?? RampUpDuration,
        };
        merged.Throttle.PermitsPerSecond = overrides.Throttle.PermitsPerSecond ?? Throttle.PermitsPerSecond;
        merged.Throttle.Burst = overrides.Throttle.Burst ?? Throttle.Burst;
        merged.Fallback.Merge(Fallback, overrides.Fallback);
        return merged;
    }
}
