using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http.Redis;

/// <summary>The log messages of fleet mode. Event ids start at 100, after the core library's.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 100, EventName = "FleetConnected", Level = LogLevel.Information,
        Message = "Fleet mode: instance '{Instance}' coordinates circuits through Redis ({Endpoints}).")]
    public static partial void Connected(ILogger logger, string instance, string endpoints);

    [LoggerMessage(EventId = 101, EventName = "FleetRedisUnavailable", Level = LogLevel.Warning,
        Message = "Fleet mode: Redis cannot be reached; every circuit decides locally until it can. {Reason}")]
    public static partial void Unavailable(ILogger logger, Exception? exception, string reason);

    [LoggerMessage(EventId = 102, EventName = "FleetVoted", Level = LogLevel.Debug,
        Message = "Fleet mode: the circuit of {Authority} (client '{ClientName}') is open here; {Votes} of {Required} instances needed ({Live} live) have it open.")]
    public static partial void Voted(ILogger logger, string authority, string clientName, long votes, long required, long live);

    [LoggerMessage(EventId = 103, EventName = "FleetCircuitOpened", Level = LogLevel.Warning,
        Message = "Fleet mode: the circuit of {Authority} (client '{ClientName}') opens for the whole fleet for {BreakDuration}, decided by instance '{Instance}'.")]
    public static partial void FleetOpened(ILogger logger, string authority, string clientName, TimeSpan breakDuration, string instance);

    [LoggerMessage(EventId = 104, EventName = "FleetProbeLeaseWon", Level = LogLevel.Information,
        Message = "Fleet mode: this instance probes {Authority} (client '{ClientName}') for the whole fleet.")]
    public static partial void ProbeLeaseWon(ILogger logger, string authority, string clientName);

    [LoggerMessage(EventId = 105, EventName = "FleetCircuitClosed", Level = LogLevel.Information,
        Message = "Fleet mode: the circuit of {Authority} (client '{ClientName}') closes for the whole fleet after instance '{Instance}' probed it successfully.")]
    public static partial void FleetClosed(ILogger logger, string authority, string clientName, string instance);

    [LoggerMessage(EventId = 106, EventName = "FleetOperationFailed", Level = LogLevel.Warning,
        Message = "Fleet mode: a Redis operation failed ({Operation}); the circuits go on deciding locally.")]
    public static partial void OperationFailed(ILogger logger, Exception exception, string operation);

    [LoggerMessage(EventId = 107, EventName = "FleetRedisRestored", Level = LogLevel.Information,
        Message = "Fleet mode: Redis is reachable again; circuits are coordinated again.")]
    public static partial void Restored(ILogger logger);

    [LoggerMessage(EventId = 108, EventName = "FleetProbeLeaseLost", Level = LogLevel.Debug,
        Message = "Fleet mode: another instance probes {Authority} (client '{ClientName}') for the fleet; this one waits for its verdict.")]
    public static partial void ProbeLeaseLost(ILogger logger, string authority, string clientName);

    [LoggerMessage(EventId = 109, EventName = "FleetVoteWithdrawn", Level = LogLevel.Debug,
        Message = "Fleet mode: the circuit of {Authority} (client '{ClientName}') is {State} here; this instance no longer counts towards opening it for the fleet.")]
    public static partial void VoteWithdrawn(ILogger logger, string authority, string clientName, CircuitState state);

    [LoggerMessage(EventId = 110, EventName = "FleetTelemetryFailed", Level = LogLevel.Warning,
        Message = "Fleet mode: a listener of circuit.fleet.decisions threw; the decision was applied all the same. Later faults of its listeners are not logged.")]
    public static partial void TelemetryFailed(ILogger logger, Exception exception);
}
