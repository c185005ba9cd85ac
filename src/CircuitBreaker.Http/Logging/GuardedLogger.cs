using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http;

/// <summary>
/// The registry's logger, which never throws into the call it logs about. <c>Microsoft.Extensions.Logging</c> calls
/// every provider and then rethrows what any of them threw, so one broken provider would fail the calls the breaker
/// logs: a successful probe whose circuit closes, a call a fallback answered. A logger that fails cannot be told so;
/// what it could not write is dropped, as the other providers have written it.
/// </summary>
internal sealed class GuardedLogger(ILogger inner) : ILogger
{
#pragma warning disable CA1031 // A logging fault must never fail the request it was written for.
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull
    {
        try
        {
            return inner.BeginScope(state);
        }
        catch (Exception)
        {
            return null;
        }
    }

    public bool IsEnabled(LogLevel logLevel)
    {
        try
        {
            return inner.IsEnabled(logLevel);
        }
        catch (Exception)
        {
            return false;
        }
    }

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            inner.Log(logLevel, eventId, state, exception, formatter);
        }
        catch (Exception)
        {
        }
    }
#pragma warning restore CA1031
}
