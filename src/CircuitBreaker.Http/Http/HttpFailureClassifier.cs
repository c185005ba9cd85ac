using System.Net;

namespace CircuitBreaker.Http;

/// <summary>
/// Decides which HTTP outcomes count as failures of the downstream host. It knows nothing about circuit
/// state; one immutable instance per circuit is replaced on reload.
/// </summary>
internal sealed class HttpFailureClassifier
{
    private readonly StatusCodeSet _failureStatusCodes;

    private HttpFailureClassifier(StatusCodeSet failureStatusCodes, TimeSpan? attemptTimeout, TimeSpan? slowCallDuration)
    {
        _failureStatusCodes = failureStatusCodes;
        AttemptTimeout = attemptTimeout;
        SlowCallDuration = slowCallDuration;
    }

    /// <summary>The time allowed until response headers arrive, or <see langword="null"/> when off.</summary>
    public TimeSpan? AttemptTimeout { get; }

    /// <summary>The duration above which a completed call counts as a failure, or <see langword="null"/> when off.</summary>
    public TimeSpan? SlowCallDuration { get; }

    public static HttpFailureClassifier From(CircuitBreakerOptions options) => new(
        StatusCodeSet.Parse(options.FailureStatusCodes),
        OffWhenInfinite(options.AttemptTimeout),
        OffWhenInfinite(options.SlowCallDuration));

    public bool IsFailure(HttpStatusCode statusCode) => _failureStatusCodes.Contains((int)statusCode);

    public bool IsSlow(TimeSpan elapsed) => elapsed > SlowCallDuration;

    private static TimeSpan? OffWhenInfinite(TimeSpan? value) => value == Timeout.InfiniteTimeSpan ? null : value;
}
