package field_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/kaload/kaload/pkg/field"
)

func TestError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{field.Errorf("URL", "required"), "URL: required"},
		{field.Errorf("HPA.MaxPods", "%d is below %d", 1, 2), "HPA.MaxPods: 1 is below 2"},
		{&field.Error{Fields: []string{"HTTP2", "H2C"}, Err: errors.New("choose one")}, "HTTP2 and H2C: choose one"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorUnwraps(t *testing.T) {
	err := field.Errorf("ResultsDir", "%w", fs.ErrPermission)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("%v does not unwrap to fs.ErrPermission", err)
	}
	var fe *field.Error
	if joined := errors.Join(errors.New("other"), err); !errors.As(joined, &fe) || fe.Fields[0] != "ResultsDir" {
		t.Errorf("errors.As through errors.Join: %v", fe)
	}
}
