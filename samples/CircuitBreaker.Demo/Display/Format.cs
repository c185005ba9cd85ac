using System.Globalization;
using CircuitBreaker.Http;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Demo.Display;

/// <summary>How times, states and log levels are written, the same in both views.</summary>
public static class Format
{
    /// <summary>A time since the drill's start, e.g. <c>+ 5.0s</c>.</summary>
    public static string Stamp(TimeSpan elapsed) => string.Create(CultureInfo.InvariantCulture, $"+{elapsed.TotalSeconds,5:0.0}s");

    /// <summary>A short duration, e.g. <c>1.4 s</c> or <c>500 ms</c>.</summary>
    public static string Seconds(TimeSpan span) =>
        span.TotalSeconds >= 1 || span == TimeSpan.Zero
            ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.0} s")
            : string.Create(CultureInfo.InvariantCulture, $"{span.TotalMilliseconds:0} ms");

    /// <summary>A countdown, e.g. <c>1.4 s</c>.</summary>
    public static string Countdown(TimeSpan span) =>
        string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, span.TotalSeconds):0.0} s");

    /// <summary>A circuit's state in a few words, e.g. <c>Open, retry in 1.4 s</c> or <c>Closed, 2 failures in a row</c>.</summary>
    public static string Circuit(Drill.ServiceStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        return status.State switch
        {
            null => "no calls yet",
            CircuitState.Open when status.RetryIn is { } r => $"Open, retry in {Countdown(r)}",
            CircuitState.HalfOpen => "HalfOpen, probe due",
            CircuitState.Closed when status.ConsecutiveFailures > 0 => $"Closed, {status.ConsecutiveFailures} failures in a row",
            _ => State(status.State),
        };
    }

    /// <summary>A number, e.g. <c>1234</c>.</summary>
    public static string Count(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A circuit state; <see langword="null"/> before the circuit's first call.</summary>
    public static string State(CircuitState? state) => state?.ToString() ?? "-";

    /// <summary>The Spectre.Console colour of a state.</summary>
    public static string Colour(CircuitState? state) => state switch
    {
        CircuitState.Closed => "green",
        CircuitState.Open => "red",
        CircuitState.HalfOpen => "yellow",
        CircuitState.Isolated => "magenta",
        _ => "grey",
    };

    /// <summary>A log level as the console logger abbreviates it.</summary>
    public static string Level(LogLevel level) => level switch
    {
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        LogLevel.Information => "info",
        _ => level.ToString().ToLowerInvariant(),
    };

    /// <summary>A log line without its time: level, short category, event id and message.</summary>
    public static string Log(LogLine line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var category = line.Category[(line.Category.LastIndexOf('.') + 1)..];
        return string.Create(CultureInfo.InvariantCulture, $"{Level(line.Level)} {category}[{line.EventId.Id}]: {line.Message}");
    }

    /// <summary>A transition without its time, e.g. <c>users   Closed -> Open (break 2.0 s)</c>.</summary>
    public static string Transition(Drill.TransitionRecord t, int nameWidth)
    {
        ArgumentNullException.ThrowIfNull(t);
        var breakText = t.BreakDuration is { } b ? $" (break {Seconds(b)})" : "";
        return $"{t.Service.PadRight(nameWidth)}  {t.Change}{breakText}";
    }
}
