using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>A logging provider that is broken: its loggers throw for every event of the categories it is told to.</summary>
internal sealed class ThrowingLoggerProvider(Func<string, bool> throwsFor) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new ThrowingLogger(throwsFor(categoryName));

    public void Dispose()
    {
    }

    private sealed class ThrowingLogger(bool throws) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (throws)
            {
                throw new InvalidOperationException("a broken logging provider");
            }
        }
    }
}
