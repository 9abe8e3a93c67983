package main

import (
	"context"
	"log/slog"
	"sync"
)

// lazyHandler makes slog's With cheap when nothing will be logged. FerretDB's SQL layer calls
// Logger.With(args...) before every statement to log it at debug level; the text handler formats
// those attributes at once, and at our warn level that was 8% of the database's CPU under load
// for lines never written. Here With only remembers the attributes; they are formatted the
// first time a record of an enabled level reaches the handler.
type lazyHandler struct {
	parent *lazyHandler
	base   slog.Handler // the real handler at the root, which decides the level
	attrs  []slog.Attr
	group  string

	once  sync.Once
	built slog.Handler
}

func newLazyHandler(base slog.Handler) *lazyHandler {
	return &lazyHandler{base: base}
}

func (h *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.base.Enabled(ctx, level)
}

func (h *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.resolve().Handle(ctx, r)
}

func (h *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &lazyHandler{parent: h, base: h.base, attrs: attrs}
}

func (h *lazyHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &lazyHandler{parent: h, base: h.base, group: name}
}

// resolve builds the real handler this one stands for, once.
func (h *lazyHandler) resolve() slog.Handler {
	h.once.Do(func() {
		switch {
		case h.parent == nil:
			h.built = h.base
		case h.group != "":
			h.built = h.parent.resolve().WithGroup(h.group)
		default:
			h.built = h.parent.resolve().WithAttrs(h.attrs)
		}
	})
	return h.built
}
