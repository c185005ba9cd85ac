using System.Net;

namespace CircuitBreaker.Http;

/// <summary>
/// Decides which HTTP outcomes count as failures of the downstream host. It knows nothing about circuit
/// state; one immutable instance per circuit is replaced on reload.
/// </summary>
internal sealed class HttpFailureClassifier
{
    /// <summary>The <c>error.type</c> of a call that exceeded <see cref="AttemptTimeout"/>.</summary>
    public const string TimeoutErrorType = "timeout";

    /// <summary>The <c>error.type</c> of a call that completed but exceeded <see cref="SlowCallDuration"/>.</summary>
    public const string SlowErrorType = "slow";

    private readonly StatusCodeSet _failureStatusCodes;

    private HttpFailureClassifier(StatusCodeSet failureStatusCodes, TimeSpan? attemptTimeout, TimeSpan? slowCallDuration, bool honorRetryAfter)
    {
        _failureStatusCodes = failureStatusCodes;
        AttemptTimeout = attemptTimeout;
        SlowCallDuration = slowCallDuration;
        HonorRetryAfter = honorRetryAfter;
    }

    /// <summary>Whether a 503 or 429 with <c>Retry-After</c> sets the break.</summary>
    public bool HonorRetryAfter { get; }

    /// <summary>The time allowed until response headers arrive, or <see langword="null"/> when off.</summary>
    public TimeSpan? AttemptTimeout { get; }

    /// <summary>The duration above which a completed call counts as a failure, or <see langword="null"/> when off.</summary>
    public TimeSpan? SlowCallDuration { get; }

    public static HttpFailureClassifier From(CircuitBreakerOptions options) => new(
        StatusCodeSet.Parse(options.FailureStatusCodes),
        OffWhenInfinite(options.AttemptTimeout),
        OffWhenInfinite(options.SlowCallDuration),
        options.HonorRetryAfter);

    public bool IsFailure(HttpStatusCode statusCode) => _failureStatusCodes.Contains((int)statusCode);

    public bool IsSlow(TimeSpan elapsed) => elapsed > SlowCallDuration;

    /// <summary>
    /// The break a failing response asks for: the <c>Retry-After</c> of a 503 or 429, as a delay or a date
    /// (measured against <paramref name="now"/>), when <see cref="HonorRetryAfter"/> is on.
    /// </summary>
    public TimeSpan? RequestedBreak(HttpResponseMessage response, DateTimeOffset now)
    {
        if (!HonorRetryAfter
            || response.StatusCode is not (HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests)
            || response.Headers.RetryAfter is not { } retryAfter)
        {
            return null;
        }

        var delay = retryAfter.Delta ?? (retryAfter.Date - now);
        return delay > TimeSpan.Zero ? delay : null;
    }

    /// <summary>
    /// Whether <paramref name="exception"/> is a timeout of a handler below the breaker: <c>SocketsHttpHandler.ConnectTimeout</c>
    /// and the like (a <see cref="TaskCanceledException"/> with a <see cref="TimeoutException"/> inside), or the timeout of a
    /// resilience handler (<c>AddResilienceHandler</c>, <c>AddStandardResilienceHandler</c>, <c>AddPolicyHandler</c>), which Polly
    /// throws as its own <c>TimeoutRejectedException</c>. Polly is recognised by name: the breaker does not depend on it.
    /// Only called for a call that threw, and by the caller's judgement that it did not cancel the call itself.
    /// </summary>
    public static bool IsTimeoutBelow(Exception exception)
    {
        if (exception is TaskCanceledException { InnerException: TimeoutException })
        {
            return true;
        }

        for (var type = exception.GetType(); type is not null && type != typeof(Exception); type = type.BaseType)
        {
            if (type.FullName == "Polly.Timeout.TimeoutRejectedException")
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The <c>error.type</c> of a failing status, such as <c>503</c>, without allocating.</summary>
    public static string ErrorType(HttpStatusCode statusCode) => DecimalStrings.Of((int)statusCode);

    private static TimeSpan? OffWhenInfinite(TimeSpan? value) => value == Timeout.InfiniteTimeSpan ? null : value;
}
