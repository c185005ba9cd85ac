using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http;

/// <summary>Every log event of the library, with stable event ids. Nothing is logged per successful call.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, EventName = "CircuitOpened", Level = LogLevel.Warning,
        Message = "Circuit for {Authority} (client '{ClientName}') opened after {ConsecutiveFailures} consecutive failures (failure ratio {FailureRatio}, last failure {LastFailure}); calls fail fast for {BreakDuration}.")]
    public static partial void CircuitOpened(ILogger logger, string authority, string clientName, int consecutiveFailures, string failureRatio, string? lastFailure, TimeSpan? breakDuration);

    [LoggerMessage(EventId = 2, EventName = "CircuitReopened", Level = LogLevel.Warning,
        Message = "Circuit for {Authority} (client '{ClientName}') re-opened: the half-open probe failed ({LastFailure}); calls fail fast for {BreakDuration}.")]
    public static partial void CircuitReopened(ILogger logger, string authority, string clientName, string? lastFailure, TimeSpan? breakDuration);

    [LoggerMessage(EventId = 3, EventName = "CircuitHalfOpened", Level = LogLevel.Information,
        Message = "Circuit for {Authority} (client '{ClientName}') is half-open: the next call is a probe.")]
    public static partial void CircuitHalfOpened(ILogger logger, string authority, string clientName);

    [LoggerMessage(EventId = 4, EventName = "CircuitClosed", Level = LogLevel.Information,
        Message = "Circuit for {Authority} (client '{ClientName}') closed (was {PreviousState}): calls flow again.")]
    public static partial void CircuitClosed(ILogger logger, string authority, string clientName, CircuitState previousState);

    [LoggerMessage(EventId = 5, EventName = "CircuitIsolated", Level = LogLevel.Warning,
        Message = "Circuit for {Authority} (client '{ClientName}') was isolated by hand (was {PreviousState}): calls fail fast until it is reset.")]
    public static partial void CircuitIsolated(ILogger logger, string authority, string clientName, CircuitState previousState);

    // The two per-call events take the circuit and read its key only when Debug is on: they run on every call a
    // circuit turns away, where building the key (its authority string, held by the circuit, and the client's name)
    // for a disabled event cost as much as the rest of the accounting.
    public static void CallRejected(ILogger logger, CircuitEntry circuit, CircuitState state, string reason, string fallback)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            var key = circuit.Key;
            CallRejected(logger, key.Authority, key.ClientName, state, reason, fallback);
        }
    }

    public static void CallObserved(ILogger logger, CircuitEntry circuit, CircuitState state)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            var key = circuit.Key;
            CallObserved(logger, key.Authority, key.ClientName, state);
        }
    }

    [LoggerMessage(EventId = 6, EventName = "CircuitCallRejected", Level = LogLevel.Debug, SkipEnabledCheck = true,
        Message = "Call to {Authority} (client '{ClientName}') not sent ({Reason}, circuit {State}); fallback: {Fallback}.")]
    private static partial void CallRejected(ILogger logger, string authority, string clientName, CircuitState state, string reason, string fallback);

    [LoggerMessage(EventId = 7, EventName = "CircuitCallObserved", Level = LogLevel.Debug, SkipEnabledCheck = true,
        Message = "Call to {Authority} (client '{ClientName}') would have been turned away by its {State} circuit; sent anyway (Enforce is off).")]
    private static partial void CallObserved(ILogger logger, string authority, string clientName, CircuitState state);

    [LoggerMessage(EventId = 8, EventName = "CircuitBreakerReloadRejected", Level = LogLevel.Error,
        Message = "Reloaded circuit-breaker options of client '{ClientName}' are invalid and were ignored; the last valid options stay in force. {Errors}")]
    public static partial void ReloadRejected(ILogger logger, string clientName, string errors);

    [LoggerMessage(EventId = 9, EventName = "CircuitStateChangedHandlerFailed", Level = LogLevel.Error,
        Message = "A StateChanged handler failed for the circuit of {Authority} (client '{ClientName}').")]
    public static partial void StateChangedHandlerFailed(ILogger logger, Exception exception, string authority, string clientName);

    [LoggerMessage(EventId = 10, EventName = "CircuitsEvicted", Level = LogLevel.Debug,
        Message = "Evicted {Count} circuits of client '{ClientName}' to stay within MaxCircuits.")]
    public static partial void CircuitsEvicted(ILogger logger, int count, string clientName);

    [LoggerMessage(EventId = 11, EventName = "CircuitFallbackFailed", Level = LogLevel.Warning,
        Message = "The {FallbackKind} fallback failed for {Authority} (client '{ClientName}'); going on without it.")]
    public static partial void FallbackFailed(ILogger logger, Exception exception, string fallbackKind, string authority, string clientName);

    [LoggerMessage(EventId = 12, EventName = "ConfigurationFileLoadFailed", Level = LogLevel.Error,
        Message = "Configuration file '{Path}' failed to load. Circuit-breaker options read from it keep their last good values until it loads again.")]
    public static partial void ConfigurationFileLoadFailed(ILogger logger, Exception exception, string path);

    [LoggerMessage(EventId = 13, EventName = "CircuitBreakerReloadHeldBack", Level = LogLevel.Error,
        Message = "Circuit-breaker options of client '{ClientName}' were not reloaded from section '{Section}': configuration file '{Path}' failed to load and has held no settings since. The last good options stay in force until it loads again.")]
    public static partial void ReloadHeldBack(ILogger logger, string clientName, string section, string path);

    [LoggerMessage(EventId = 14, EventName = "CircuitBreakerSectionEmptied", Level = LogLevel.Warning,
        Message = "Configuration section '{Section}' no longer holds any circuit-breaker options: they return to their defaults. If that was not meant, a configuration source has lost its settings.")]
    public static partial void SectionEmptied(ILogger logger, string section);

    [LoggerMessage(EventId = 15, EventName = "CircuitTelemetryFailed", Level = LogLevel.Warning,
        Message = "A {Signal} listener of the circuit breaker threw; the call it observed went on unaffected. Later faults of {Signal} listeners are not logged.")]
    public static partial void TelemetryFailed(ILogger logger, Exception exception, string signal);

    [LoggerMessage(EventId = 16, EventName = "OpenCircuitsEvicted", Level = LogLevel.Warning,
        Message = "Evicted {Count} circuits of client '{ClientName}' that were not closed, to stay within MaxCircuits: calls to their hosts are sent again, through new closed circuits. Raise MaxCircuits if this client calls more broken hosts than that. Evicted: {Circuits}.")]
    public static partial void OpenCircuitsEvicted(ILogger logger, int count, string clientName, string circuits);

    [LoggerMessage(EventId = 17, EventName = "CircuitOpenedByFleet", Level = LogLevel.Warning,
        Message = "Circuit for {Authority} (client '{ClientName}') opened by a decision of the fleet (was {PreviousState}); calls fail fast for {BreakDuration}.")]
    public static partial void CircuitOpenedByFleet(ILogger logger, string authority, string clientName, CircuitState previousState, TimeSpan? breakDuration);
}
