using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Demo.Display;

/// <summary>One log entry, timed from the drill's start.</summary>
public sealed record LogLine(TimeSpan Elapsed, LogLevel Level, string Category, EventId EventId, string Message);

/// <summary>
/// The demo's only logging provider: it hands each entry (at the levels the <c>Logging</c> section lets through,
/// Warning by default) to the console view, which prints it as a line or shows the last few in the live view.
/// </summary>
public sealed class LogSink(Func<TimeSpan> elapsed, Action<LogLine> write) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new SinkLogger(categoryName, this);

    public void Dispose()
    {
    }

    private void Write(LogLevel level, string category, EventId eventId, string message) =>
        write(new LogLine(elapsed(), level, category, eventId, message));

    private sealed class SinkLogger(string category, LogSink sink) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            if (exception is not null)
            {
                message += $" ({exception.GetType().Name}: {exception.Message})";
            }

            sink.Write(logLevel, category, eventId, message);
        }
    }
}
