using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, EventName = "CircuitStateChanged",
        Message = "Circuit for {Authority} (client '{ClientName}') changed from {PreviousState} to {State}; break {BreakDuration}.")]
    public static partial void StateChanged(ILogger logger, LogLevel level, string authority, string clientName, CircuitState previousState, CircuitState state, TimeSpan? breakDuration);

    [LoggerMessage(EventId = 2, EventName = "CircuitBreakerReloadRejected", Level = LogLevel.Error,
        Message = "Reloaded circuit-breaker options of client '{ClientName}' are invalid and were ignored; the last valid options stay in force. {Errors}")]
    public static partial void ReloadRejected(ILogger logger, string clientName, string errors);

    [LoggerMessage(EventId = 3, EventName = "CircuitStateChangedHandlerFailed", Level = LogLevel.Error,
        Message = "A StateChanged handler failed for the circuit of {Authority} (client '{ClientName}').")]
    public static partial void StateChangedHandlerFailed(ILogger logger, Exception exception, string authority, string clientName);

    [LoggerMessage(EventId = 4, EventName = "CircuitsEvicted", Level = LogLevel.Debug,
        Message = "Evicted {Count} circuits of client '{ClientName}' to stay within MaxCircuits.")]
    public static partial void CircuitsEvicted(ILogger logger, int count, string clientName);

    [LoggerMessage(EventId = 5, EventName = "CircuitFallbackFailed", Level = LogLevel.Warning,
        Message = "The {FallbackKind} fallback failed for {Authority} (client '{ClientName}'); going on without it.")]
    public static partial void FallbackFailed(ILogger logger, Exception exception, string fallbackKind, string authority, string clientName);
}
