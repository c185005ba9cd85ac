using System.Globalization;

namespace CircuitBreaker.Http;

/// <summary>
/// Thrown instead of calling a downstream host whose circuit is open (or half-open with every probe slot
/// taken, or isolated). It is an <see cref="HttpRequestException"/>, so existing catch blocks keep working.
/// </summary>
public class CircuitOpenException : HttpRequestException
{
    /// <summary>Initializes a new instance of the <see cref="CircuitOpenException"/> class.</summary>
    public CircuitOpenException()
        : this("The circuit is open: the call was not sent.")
    {
    }

    /// <summary>Initializes a new instance of the <see cref="CircuitOpenException"/> class with a message.</summary>
    /// <param name="message">The message.</param>
    public CircuitOpenException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="CircuitOpenException"/> class with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The inner exception.</param>
    public CircuitOpenException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="CircuitOpenException"/> class for a circuit.</summary>
    /// <param name="circuitKey">The circuit that turned the call away.</param>
    /// <param name="state">The state the circuit was in.</param>
    /// <param name="retryAfter">The time until a probe may be sent, if known.</param>
    public CircuitOpenException(CircuitKey circuitKey, CircuitState state, TimeSpan? retryAfter)
        : base(FormatMessage(circuitKey, state, retryAfter))
    {
        CircuitKey = circuitKey;
        State = state;
        RetryAfter = retryAfter;
    }

    /// <summary>Gets the circuit that turned the call away.</summary>
    public CircuitKey CircuitKey { get; }

    /// <summary>
    /// Gets the state the circuit was in when it turned the call away: <see cref="CircuitState.Open"/>,
    /// <see cref="CircuitState.HalfOpen"/> or <see cref="CircuitState.Isolated"/>. An exception built by a constructor
    /// without a state has the default, <see cref="CircuitState.Closed"/>.
    /// </summary>
    public CircuitState State { get; }

    /// <summary>
    /// Gets the time until the circuit lets a probe through, or <see langword="null"/> when it cannot be
    /// known (isolated by hand, or half-open with every probe slot taken).
    /// </summary>
    public TimeSpan? RetryAfter { get; }

    private static string FormatMessage(CircuitKey key, CircuitState state, TimeSpan? retryAfter) => state switch
    {
        CircuitState.Isolated => $"The circuit for {key} is isolated: calls fail fast until it is reset by hand.",
        CircuitState.HalfOpen => $"The circuit for {key} is half-open and its probe slots are taken: calls fail fast until a probe succeeds.",
        _ when retryAfter is { } retry => string.Create(CultureInfo.InvariantCulture, $"The circuit for {key} is open: calls fail fast. It may be tried again in {retry.TotalSeconds:0.###} s."),
        _ => $"The circuit for {key} is open: calls fail fast.",
    };
}
