using Microsoft.Extensions.ObjectPool;

namespace CircuitBreaker.Http;

/// <summary>
/// Reuses the <see cref="CancellationTokenSource"/> behind each call's <see cref="CircuitBreakerOptions.AttemptTimeout"/>,
/// so that a call through a closed circuit allocates no timer of its own. A source goes back to the pool only
/// when <see cref="CancellationTokenSource.TryReset"/> succeeds: never once it has fired.
/// </summary>
internal sealed class AttemptTimeouts
{
    private readonly ObjectPool<CancellationTokenSource> _pool;

    public AttemptTimeouts(TimeProvider timeProvider) =>
        _pool = new DefaultObjectPool<CancellationTokenSource>(new Policy(timeProvider), maximumRetained: 256);

    public CancellationTokenSource Rent(TimeSpan timeout)
    {
        var source = _pool.Get();
        source.CancelAfter(timeout);
        return source;
    }

    public void Return(CancellationTokenSource source) => _pool.Return(source);

    private sealed class Policy(TimeProvider timeProvider) : IPooledObjectPolicy<CancellationTokenSource>
    {
        // Created without a delay but with the provider, so CancelAfter runs on the injected clock.
        public CancellationTokenSource Create() => new(Timeout.InfiniteTimeSpan, timeProvider);

        public bool Return(CancellationTokenSource obj)
        {
            if (obj.TryReset())
            {
                return true;
            }

            obj.Dispose();
            return false;
        }
    }
}
