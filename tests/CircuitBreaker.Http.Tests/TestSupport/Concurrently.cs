namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// Runs actions on dedicated threads released together by a barrier, so that they truly contend:
/// pool threads would be injected one by one and mostly run the actions in turn.
/// </summary>
internal static class Concurrently
{
    public static void Run(int threads, Action<int> action)
    {
        using var start = new Barrier(threads);
        Exception? failure = null;
        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            try
            {
                action(i);
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref failure, ex, null);
            }
        })).ToList();

        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());
        if (failure is not null)
        {
            throw new AggregateException(failure);
        }
    }
}
