using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// A logger provider that lets a test await a log event (by event name) instead of polling or sleeping: background
/// work, such as fleet coordination, says through its logs when it has done something.
/// </summary>
internal sealed class LogSignals : ILoggerProvider
{
    private readonly ConcurrentQueue<(string EventName, string Message)> _entries = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource Signal)> _waiters = [];
    private readonly Lock _lock = new();

    public IReadOnlyList<string> Messages(string eventName) =>
        _entries.Where(e => e.EventName == eventName).Select(e => e.Message).ToList();

    /// <summary>Completes when an event named <paramref name="eventName"/> has been logged, now or before; fails with a <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public Task WaitAsync(string eventName, TimeSpan timeout) => WaitAnyAsync(timeout, eventName);

    /// <summary>
    /// Completes when any of <paramref name="eventNames"/> has been logged, now or before. One task for all of them, so
    /// that the events that never come leave no timed-out task behind unobserved.
    /// </summary>
    public Task WaitAnyAsync(TimeSpan timeout, params string[] eventNames)
    {
        bool Match(string name) => eventNames.Contains(name, StringComparer.Ordinal);
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_entries.Any(e => Match(e.EventName)))
            {
                return Task.CompletedTask;
            }

            _waiters.Add((Match, signal));
        }

        return signal.Task.WaitAsync(timeout);
    }

    /// <summary>
    /// Completes when <paramref name="eventName"/> has been logged <paramref name="count"/> times, or any of
    /// <paramref name="orEventNames"/> once, now or before: for an event that a test has seen already and must see again,
    /// unless it learns that something else happened instead.
    /// </summary>
    public Task WaitCountAsync(string eventName, int count, TimeSpan timeout, params string[] orEventNames)
    {
        bool Other(string name) => orEventNames.Contains(name, StringComparer.Ordinal);
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            var seen = _entries.Count(e => e.EventName == eventName);
            if (seen >= count || _entries.Any(e => Other(e.EventName)))
            {
                return Task.CompletedTask;
            }

            // Called under the lock for each event logged from now on, once: the count goes on from the one above.
            _waiters.Add((name => Other(name) || (name == eventName && ++seen >= count), signal));
        }

        return signal.Task.WaitAsync(timeout);
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private void Add(string eventName, string message)
    {
        lock (_lock)
        {
            _entries.Enqueue((eventName, message));
            foreach (var waiter in _waiters.Where(w => w.Match(eventName)).ToList())
            {
                waiter.Signal.TrySetResult();
                _waiters.Remove(waiter);
            }
        }
    }

    private sealed class Logger(LogSignals owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Name is { } name)
            {
                owner.Add(name, formatter(state, exception));
            }
        }
    }
}
