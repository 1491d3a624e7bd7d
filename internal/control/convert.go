package control

import (
	"fmt"

	"github.com/ztna/ztna/internal/api"
)

// ServiceFromAPI is the wire form of a management-API service: its port ranges ("from-to")
// parsed into PortRanges.
func ServiceFromAPI(s *api.Service) (Service, error) {
	ws := Service{ID: s.ID, Name: s.Name, Address: s.Address, Port: s.Port, Protocol: s.Protocol}
	for _, pr := range s.PortRanges {
		from, to, err := api.ParsePortRange(pr)
		if err != nil {
			return Service{}, fmt.Errorf("service %s: %w", s.Name, err)
		}
		ws.PortRanges = append(ws.PortRanges, PortRange{From: from, To: to})
	}
	return ws, nil
}
