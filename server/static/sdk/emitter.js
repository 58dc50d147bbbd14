// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/** A small typed event emitter: `on`/`once`/`off`, and a listener that throws never breaks
 * the client (the error is reported to `console.error`). */
export class Emitter {
    #listeners = new Map();
    /** Calls `listener` for every `event`; returns a function that removes it. */
    on(event, listener) {
        let set = this.#listeners.get(event);
        if (!set)
            this.#listeners.set(event, (set = new Set()));
        set.add(listener);
        return () => this.off(event, listener);
    }
    once(event, listener) {
        const off = this.on(event, (value) => {
            off();
            listener(value);
        });
        return off;
    }
    off(event, listener) {
        this.#listeners.get(event)?.delete(listener);
    }
    /** The next `event` as a promise (rejects after `timeoutMs`, if given). */
    next(event, timeoutMs) {
        return new Promise((resolve, reject) => {
            let timer;
            const off = this.once(event, (value) => {
                if (timer !== undefined)
                    clearTimeout(timer);
                resolve(value);
            });
            if (timeoutMs !== undefined) {
                timer = setTimeout(() => {
                    off();
                    reject(new Error(`no "${String(event)}" event within ${timeoutMs} ms`));
                }, timeoutMs);
            }
        });
    }
    emit(event, value) {
        for (const listener of [...(this.#listeners.get(event) ?? [])]) {
            try {
                listener(value);
            }
            catch (error) {
                console.error(`realtime-client: a "${String(event)}" listener threw`, error);
            }
        }
    }
    listenerCount(event) {
        return this.#listeners.get(event)?.size ?? 0;
    }
}
