using System.Globalization;

namespace CircuitBreaker.Http;

/// <summary>
/// Thrown when the client sheds a call to a healthy host to protect it (a concurrency limit, a throttle, or the
/// slow start after recovery) and no fallback answered. Unlike <see cref="CircuitOpenException"/> it does not
/// mean the host is broken, and it is never counted as a failure of the host. It is an
/// <see cref="HttpRequestException"/>, so existing catch blocks keep working.
/// </summary>
public class LoadSheddingException : HttpRequestException
{
    /// <summary>Initializes a new instance of the <see cref="LoadSheddingException"/> class.</summary>
    public LoadSheddingException()
        : this("The call was shed to protect the downstream host.")
    {
    }

    /// <summary>Initializes a new instance of the <see cref="LoadSheddingException"/> class with a message.</summary>
    /// <param name="message">The message.</param>
    public LoadSheddingException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="LoadSheddingException"/> class with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The inner exception.</param>
    public LoadSheddingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="LoadSheddingException"/> class for a circuit.</summary>
    /// <param name="circuitKey">The circuit of the host that was protected.</param>
    /// <param name="reason">Which limit shed the call.</param>
    /// <param name="retryAfter">When a call is likely to be let through, if known.</param>
    public LoadSheddingException(CircuitKey circuitKey, LoadSheddingReason reason, TimeSpan? retryAfter)
        : base(string.Create(
            CultureInfo.InvariantCulture,
            $"The call to {circuitKey} was shed ({reason}) to protect the host; it is not broken.{(retryAfter is { } r ? $" Retry in {r.TotalSeconds:0.###} s." : "")}"))
    {
        CircuitKey = circuitKey;
        Reason = reason;
        RetryAfter = retryAfter;
    }

    /// <summary>Gets the circuit of the host that was protected.</summary>
    public CircuitKey CircuitKey { get; }

    /// <summary>Gets which limit shed the call.</summary>
    public LoadSheddingReason Reason { get; }

    /// <summary>Gets when a call is likely to be let through (the next throttle token), if known.</summary>
    public TimeSpan? RetryAfter { get; }
}
